package deps

import pubsub "github.com/libp2p/go-libp2p-pubsub"

// Signer is this node's identity (a *node.Identity), as the services that sign what they
// publish need it. Safe for concurrent use.
type Signer interface {
	// ID is this node's peer ID, as a string.
	ID() string
	// Sign signs msg with this node's key.
	Sign(msg []byte) ([]byte, error)
}

// PubSub is the mesh's gossip (a *pubsub.PubSub), on which a service joins its topic and
// validates what arrives on it.
type PubSub interface {
	RegisterTopicValidator(topic string, val any, opts ...pubsub.ValidatorOpt) error
	Join(topic string, opts ...pubsub.TopicOpt) (*pubsub.Topic, error)
}
