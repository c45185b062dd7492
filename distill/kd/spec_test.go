package kd

import (
	"errors"
	"strings"
	"testing"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		in   string
		want Spec
	}{
		{"expert:fashion-mnist", Spec{Kind: KindExpert, Ref: "fashion-mnist"}},
		{"expert:bafyreih4xyz", Spec{Kind: KindExpert, Ref: "bafyreih4xyz"}},
		{"expert:/tmp/model.safetensors", Spec{Kind: KindExpert, Ref: "/tmp/model.safetensors"}},
		{"moe:/models/Kimi-K2#layer=3,expert=17", Spec{Kind: KindMoE, Dir: "/models/Kimi-K2", Layer: 3, Expert: 17}},
		{"moe:ck#expert=0,layer=1", Spec{Kind: KindMoE, Dir: "ck", Layer: 1, Expert: 0}},
		{"moe:dir#with#hash#layer=2,expert=5", Spec{Kind: KindMoE, Dir: "dir#with#hash", Layer: 2, Expert: 5}},
		{"openai:https://llm.example.net/v1?model=kimi-k2-0905-preview", Spec{Kind: KindOpenAI, BaseURL: "https://llm.example.net/v1", Model: "kimi-k2-0905-preview"}},
		{"openai:http://127.0.0.1:8000/v1/?model=a%2Fb", Spec{Kind: KindOpenAI, BaseURL: "http://127.0.0.1:8000/v1", Model: "a/b"}},
	}
	for _, tc := range tests {
		got, err := ParseSpec(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%q: got %+v, want %+v", tc.in, got, tc.want)
		}
		again, err := ParseSpec(got.String())
		if err != nil || again != got {
			t.Errorf("%q: String %q parses to %+v, %v", tc.in, got.String(), again, err)
		}
	}
}

func TestParseSpecErrors(t *testing.T) {
	tests := []struct{ in, mention string }{
		{"", "want expert:REF"},
		{"fashion-mnist", "want expert:REF"},
		{"expert:", "needs an expert ID"},
		{"gpt:foo", "unknown teacher kind"},
		{"moe:/models/k2", "DIR#layer=L,expert=E"},
		{"moe:#layer=1,expert=2", "empty checkpoint folder"},
		{"moe:d#layer=1", "need both"},
		{"moe:d#layer=1,expert=2,expert=3", "given twice"},
		{"moe:d#layer=-1,expert=2", "not an integer"},
		{"moe:d#layer=01,expert=2", "not an integer"},
		{"moe:d#layer=1,expert=x", "not an integer"},
		{"moe:d#layer=1,shard=2", "unknown key"},
		{"moe:d#layer", "not key=value"},
		{"openai:api.example.com?model=m", "http:// or https://"},
		{"openai:https://api.example.com/v1", "model=NAME"},
		{"openai:https://api.example.com/v1?model=", "model=NAME"},
		{"openai:https://api.example.com/v1?model=a&model=b", "exactly one"},
		{"openai:https://api.example.com/v1?model=m&temperature=1", "unknown query key"},
		{"openai:https://user:pw@api.example.com?model=m", "no user info"},
		{"expert:a\nb", "control character"},
		{"expert:" + strings.Repeat("x", maxSpecLen), "longer than"},
	}
	for _, tc := range tests {
		_, err := ParseSpec(tc.in)
		if err == nil {
			t.Errorf("%q: want error", tc.in)
			continue
		}
		if !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("%q: error %q should wrap ErrBadSpec and mention %q", tc.in, err, tc.mention)
		}
	}
}

// FuzzParseSpec: any input parses or errors without panicking, and a parsed spec renders to a
// string that parses back to the same spec.
func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"expert:x", "moe:d#layer=1,expert=2", "openai:https://h/v1?model=m", "moe:#", "openai:http://[::1]:80?model=%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := ParseSpec(s)
		if err != nil {
			if !errors.Is(err, ErrBadSpec) {
				t.Fatalf("%q: error %v does not wrap ErrBadSpec", s, err)
			}
			return
		}
		again, err := ParseSpec(sp.String())
		if err != nil || again != sp {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, sp, sp.String(), again, err)
		}
	})
}
