package secagg

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
)

// seedSize is the size of every derived key and seed.
const seedSize = 32

// derive is HKDF-SHA256 of secret with the session as salt and a label as info.
func derive(secret, session []byte, label string) []byte {
	k, err := hkdf.Key(sha256.New, secret, session, label, seedSize)
	if err != nil { // only for lengths beyond 255·32 bytes
		panic("secagg: hkdf: " + err.Error())
	}
	return k
}

// addMask adds (sign > 0) or subtracts the mask that seed expands to (AES-256-CTR, zero IV:
// every seed is used for one mask only) to v, modulo 2^64.
func addMask(v []uint64, seed []byte, sign int) {
	block, err := aes.NewCipher(seed)
	if err != nil { // seeds are always 32 bytes
		panic("secagg: aes: " + err.Error())
	}
	stream := cipher.NewCTR(block, make([]byte, aes.BlockSize))
	const chunk = 4096
	buf := make([]byte, 8*chunk)
	for off := 0; off < len(v); off += chunk {
		n := min(chunk, len(v)-off)
		b := buf[:8*n]
		clear(b)
		stream.XORKeyStream(b, b)
		for i := range n {
			m := binary.LittleEndian.Uint64(b[8*i:])
			if sign > 0 {
				v[off+i] += m
			} else {
				v[off+i] -= m
			}
		}
	}
}
