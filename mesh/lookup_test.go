package mesh

import (
	"strings"
	"testing"
)

func TestDecodePull(t *testing.T) {
	tests := []struct {
		name, msg, wantErr string
	}{
		{"domain pull", `{"domain":"vision"}`, ""},
		{"expert pull", `{"id":"bafyreifjxgzfxnytwsoazbg3gjpwjhqiikvtyrsmk7aanciamn4m5vbwby"}`, ""},
		{"push", `{"adverts":[{"v":1}]}`, ""},
		{"unknown field", `{"domain":"vision","all":true}`, "unknown field"},
		{"trailing data", `{"domain":"vision"}{}`, "data after"},
		{"not JSON", `domain=vision`, "invalid character"},
		{"empty", ``, "EOF"},
		{"long domain", `{"domain":"` + strings.Repeat("d", 129) + `"}`, "over 128 bytes"},
		{"too many adverts", `{"adverts":[` + strings.Repeat(`{},`, 256) + `{}]}`, "at most 256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodePull([]byte(tc.msg))
			if tc.wantErr == "" && err != nil {
				t.Fatalf("decodePull: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("decodePull: %v, want an error with %q", err, tc.wantErr)
			}
		})
	}
}

// FuzzDecodePull: whatever a peer sends, decoding ends in a message within its bounds or an
// error, never a panic.
func FuzzDecodePull(f *testing.F) {
	f.Add([]byte(`{"domain":"vision"}`))
	f.Add([]byte(`{"adverts":[{"v":1,"provider":"x"}]}`))
	f.Add([]byte(`{"id":"` + strings.Repeat("a", 200) + `"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodePull(data)
		if err != nil {
			return
		}
		if len(m.Adverts) > 256 || len(m.Domain) > 128 || len(m.ID) > 128 {
			t.Fatalf("decoded past the bounds: %d adverts, domain %d bytes, id %d bytes", len(m.Adverts), len(m.Domain), len(m.ID))
		}
	})
}
