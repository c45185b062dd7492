package secagg

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"fmt"
	"io"

	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/secretsharing"
)

// Commitments are a dealer's Feldman commitments to the polynomials that share its two
// secrets (threshold elements each, Ristretto255, 32 bytes): anyone can check a share
// against them without learning the secret.
type Commitments struct {
	Mask [][]byte `json:"mask"` // the mask key's secret
	Self [][]byte `json:"self"` // the self mask's seed
}

// SealedShare is a dealer's two shares for one recipient, sealed with AES-256-GCM under
// their agreed cipher key.
type SealedShare struct {
	From string `json:"from"`
	To   string `json:"to"`
	Box  []byte `json:"box"`
}

// Dealing is what a participant sends in the sharing step: its commitments and a sealed
// share for every neighbour.
type Dealing struct {
	Commit Commitments   `json:"commit"`
	Shares []SealedShare `json:"shares"`
}

// Delivery is what a participant receives after the sharing step: the shares dealt to it,
// with their dealers' commitments.
type Delivery struct {
	From   string      `json:"from"`
	Commit Commitments `json:"commit"`
	Box    []byte      `json:"box"`
}

// Reveal is a survivor's share of a neighbour's secret in the unmasking step: of its self
// mask's seed if the neighbour sent masked input (Self), of its mask key's secret if not.
type Reveal struct {
	Owner string `json:"owner"`
	Self  bool   `json:"self"`
	Value []byte `json:"value"`
}

// scalarSize is the encoding of a Ristretto255 scalar or element.
const scalarSize = 32

// shareID is the Shamir x-coordinate of a roster member: its index plus one (never zero).
func shareID(index int) group.Scalar { return scalar.NewScalar().SetUint64(uint64(index) + 1) }

// deal Shamir-shares secret among the roster members at indexes with threshold t (t shares
// rebuild it) and commits to the polynomial.
func deal(rnd io.Reader, secret group.Scalar, t int, indexes []int) ([]group.Scalar, [][]byte, error) {
	ss := secretsharing.New(rnd, uint(t-1), secret)
	values := make([]group.Scalar, len(indexes))
	for i, idx := range indexes {
		values[i] = ss.ShareWithID(shareID(idx)).Value
	}
	var commit [][]byte
	for _, e := range ss.CommitSecret() {
		b, err := e.MarshalBinary()
		if err != nil {
			return nil, nil, fmt.Errorf("secagg: commitment: %w", err)
		}
		commit = append(commit, b)
	}
	return values, commit, nil
}

// parseCommitment decodes a commitment of t elements.
func parseCommitment(c [][]byte, t int) (secretsharing.SecretCommitment, error) {
	if len(c) != t {
		return nil, fmt.Errorf("%d commitment elements for threshold %d", len(c), t)
	}
	out := make(secretsharing.SecretCommitment, t)
	for i, b := range c {
		e := scalar.NewElement()
		if len(b) != scalarSize {
			return nil, fmt.Errorf("commitment element %d has %d bytes", i, len(b))
		}
		if err := e.UnmarshalBinary(b); err != nil {
			return nil, fmt.Errorf("commitment element %d: %w", i, err)
		}
		out[i] = e
	}
	return out, nil
}

func parseScalar(b []byte) (group.Scalar, error) {
	if len(b) != scalarSize {
		return nil, fmt.Errorf("share of %d bytes, want %d", len(b), scalarSize)
	}
	s := scalar.NewScalar()
	if err := s.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	return s, nil
}

// verifyShare checks that value is the share of the roster member at index under commitment.
func verifyShare(value group.Scalar, index, t int, c secretsharing.SecretCommitment) bool {
	return secretsharing.Verify(uint(t-1), secretsharing.Share{ID: shareID(index), Value: value}, c)
}

// boxKey is the AES-GCM cipher between the holder of priv and the owner of pub.
func boxKey(priv *ecdh.PrivateKey, pub *ecdh.PublicKey, session []byte) (cipher.AEAD, error) {
	shared, err := priv.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("secagg: share key agreement: %w", err)
	}
	block, err := aes.NewCipher(derive(shared, session, "meshnode secagg share box"))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func boxAAD(session []byte, from, to string) []byte {
	aad := append([]byte{}, session...)
	aad = append(aad, 0)
	aad = append(aad, from...)
	aad = append(aad, 0)
	return append(aad, to...)
}

func seal(rnd io.Reader, aead cipher.AEAD, plain, aad []byte) ([]byte, error) {
	nonce := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(rnd, nonce); err != nil {
		return nil, fmt.Errorf("secagg: nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, plain, aad), nil
}

func open(aead cipher.AEAD, box, aad []byte) ([]byte, error) {
	if len(box) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("sealed share of %d bytes is too short", len(box))
	}
	n := aead.NonceSize()
	return aead.Open(nil, box[:n], box[n:], aad)
}
