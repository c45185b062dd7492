package node

import (
	"crypto/rand"
	"fmt"
	"os"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Identity is a node's ed25519 key pair and the peer ID derived from it. It signs manifests as
// their publisher (it implements experts.Signer).
type Identity struct {
	key crypto.PrivKey
	id  peer.ID
}

func newIdentity() (*Identity, error) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate identity: %w", err)
	}
	return identityFromKey(k)
}

func identityFromKey(k crypto.PrivKey) (*Identity, error) {
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("derive peer ID: %w", err)
	}
	return &Identity{key: k, id: id}, nil
}

func loadIdentity(path string) (*Identity, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read identity: %w", err)
	}
	k, err := crypto.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	return identityFromKey(k)
}

func (i *Identity) save(path string) error {
	b, err := crypto.MarshalPrivateKey(i.key)
	if err != nil {
		return fmt.Errorf("encode identity: %w", err)
	}
	return WriteFileAtomic(path, b, 0o600)
}

// ID is the peer ID, as a string.
func (i *Identity) ID() string { return i.id.String() }

// PeerID is the libp2p peer ID.
func (i *Identity) PeerID() peer.ID { return i.id }

// PrivKey is the libp2p private key (for the host).
func (i *Identity) PrivKey() crypto.PrivKey { return i.key }

// Sign signs msg with the identity key.
func (i *Identity) Sign(msg []byte) ([]byte, error) { return i.key.Sign(msg) }

// VerifyPeerSignature checks that sig is the signature of msg by the peer named publisher: the
// public key comes out of the peer ID itself (ed25519 IDs inline their key).
func VerifyPeerSignature(publisher string, msg, sig []byte) error {
	id, err := peer.Decode(publisher)
	if err != nil {
		return fmt.Errorf("publisher %q is not a peer ID: %w", publisher, err)
	}
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return fmt.Errorf("publisher %s: no public key in the peer ID: %w", publisher, err)
	}
	ok, err := pub.Verify(msg, sig)
	if err != nil {
		return fmt.Errorf("verify signature of %s: %w", publisher, err)
	}
	if !ok {
		return fmt.Errorf("signature does not match publisher %s", publisher)
	}
	return nil
}
