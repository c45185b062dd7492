package secagg

import (
	"crypto/ecdh"
	"fmt"

	"github.com/cloudflare/circl/group"
)

// Advert is a participant's public keys for one round: CipherKey seals the shares others
// send it, MaskKey agrees its pairwise masks (both X25519, 32 bytes). The caller signs it:
// a coordinator that could swap keys could read shares.
type Advert struct {
	ID        string `json:"id"`
	CipherKey []byte `json:"cipher_key"`
	MaskKey   []byte `json:"mask_key"`
}

var (
	curve  = ecdh.X25519()
	scalar = group.Ristretto255
)

// keyOfSecret turns a shared secret scalar into the X25519 private key it stands for: the
// mask key's secret is a scalar so that Shamir sharing over Ristretto255 can carry it.
func keyOfSecret(s group.Scalar, session []byte) (*ecdh.PrivateKey, error) {
	b, err := s.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("secagg: mask secret: %w", err)
	}
	k, err := curve.NewPrivateKey(derive(b, session, "meshnode secagg mask key"))
	if err != nil {
		return nil, fmt.Errorf("secagg: mask key: %w", err)
	}
	return k, nil
}

// selfSeed is the seed of the self mask a secret scalar stands for.
func selfSeed(b group.Scalar, session []byte) ([]byte, error) {
	raw, err := b.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("secagg: self-mask secret: %w", err)
	}
	return derive(raw, session, "meshnode secagg self mask"), nil
}

// pairSeed is the seed of the pairwise mask between the holder of priv and the owner of pub.
func pairSeed(priv *ecdh.PrivateKey, pub *ecdh.PublicKey, session []byte) ([]byte, error) {
	shared, err := priv.ECDH(pub)
	if err != nil { // a low-order public key
		return nil, fmt.Errorf("secagg: pairwise key agreement: %w", err)
	}
	return derive(shared, session, "meshnode secagg pair mask"), nil
}

// pairSign is the sign a participant's pairwise mask with other carries: the smaller ID adds
// it, the larger subtracts it, so the two cancel in the sum.
func pairSign(me, other string) int {
	if me < other {
		return 1
	}
	return -1
}

func publicKey(b []byte, what string) (*ecdh.PublicKey, error) {
	k, err := curve.NewPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("secagg: %s: %w", what, err)
	}
	return k, nil
}
