package experts

import (
	"errors"
	"fmt"
)

// Signer signs manifests as a publisher. The node implements it with its libp2p identity key;
// ID is then the peer ID, from which a verifier recovers the public key.
type Signer interface {
	ID() string
	Sign(msg []byte) ([]byte, error)
}

// Verifier checks that sig is publisher's signature of msg.
type Verifier func(publisher string, msg, sig []byte) error

// ErrUnsigned is returned by Verify for a manifest that carries no signature.
var ErrUnsigned = errors.New("manifest is not signed")

// Sign sets the publisher and signs the manifest's canonical encoding (without the signature).
func (m *Manifest) Sign(s Signer) error {
	m.Publisher, m.Signature = s.ID(), nil
	msg, err := m.SigningBytes()
	if err != nil {
		return fmt.Errorf("sign manifest: %w", err)
	}
	sig, err := s.Sign(msg)
	if err != nil {
		return fmt.Errorf("sign manifest: %w", err)
	}
	m.Signature = sig
	return nil
}

// Verify checks the publisher's signature.
func (m *Manifest) Verify(v Verifier) error {
	if len(m.Signature) == 0 {
		return ErrUnsigned
	}
	msg, err := m.SigningBytes()
	if err != nil {
		return err
	}
	if err := v(m.Publisher, msg, m.Signature); err != nil {
		return fmt.Errorf("manifest signature by %s: %w", m.Publisher, err)
	}
	return nil
}
