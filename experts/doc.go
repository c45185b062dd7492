// Package experts owns what a micro-expert is: a small feed-forward network (Arch, Network:
// dense and SwiGLU layers, a softmax or linear head, 1K–100K parameters), how it trains
// (Train with adam or SGD, early stopping on a validation split, Evaluate), its weights file
// (EncodeWeights/DecodeWeights: safetensors in PyTorch's layout, the architecture in its
// metadata), and its manifest (Manifest: name, domains, input and output specs, evaluations,
// lineage, a CID link to the weights, the publisher's signature). An expert version is the CID
// of its dag-cbor manifest (Manifest.CID); Sign and Verify bind a manifest to its publisher.
//
// A typical life:
//
//	net, _ := experts.NewNetwork(arch, seed)
//	res, _ := experts.Train(ctx, net, train, val, cfg)   // restores the best epoch
//	w, _ := experts.EncodeWeights(net)
//	m := &experts.Manifest{Name: "iris", Arch: arch, ...}
//	_ = m.Sign(identity)                                 // then experts/store keeps both
//
// The sub-packages: experts/dataset (data sets, suites and text features), experts/safetensors
// (the file format) and experts/store (a node's badger database of experts and blobs).
// Everything here is pure computation over values; nothing reads the network or the clock
// except Train's elapsed times.
package experts
