// Package testkeys provides deterministic ed25519 keys and a keyring verifier
// for tests of signed messages. It imports nothing from libp2p.
package testkeys

import (
	"bytes"
	"crypto/ed25519"
	"errors"
)

// Key is a named ed25519 signing key.
type Key struct {
	id   string
	priv ed25519.PrivateKey
}

// ID returns the name the key was made under.
func (k Key) ID() string { return k.id }

// Sign signs msg with the key; it never fails.
func (k Key) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(k.priv, msg), nil }

// Ring maps author names to their public keys.
type Ring map[string]ed25519.PublicKey

// Verify checks that sig is author's signature of msg.
func (r Ring) Verify(author string, msg, sig []byte) error {
	pub, ok := r[author]
	if !ok || !ed25519.Verify(pub, msg, sig) {
		return errors.New("bad signature")
	}
	return nil
}

// New makes the key whose seed is 32 copies of seed, registers its public
// key under name and returns it.
func (r Ring) New(name string, seed byte) Key {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
	r[name] = priv.Public().(ed25519.PublicKey)
	return Key{name, priv}
}
