package kd

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode"
)

// Kind is the kind of a teacher.
type Kind string

// Teacher kinds.
const (
	KindExpert Kind = "expert" // a micro-expert from a store or an exported file
	KindMoE    Kind = "moe"    // one routed expert of a mixture-of-experts checkpoint
	KindOpenAI Kind = "openai" // an OpenAI-compatible chat endpoint
)

// ErrBadSpec marks every malformed teacher SPEC.
var ErrBadSpec = errors.New("bad teacher spec")

// maxSpecLen bounds a SPEC string.
const maxSpecLen = 4096

// Spec is a parsed teacher SPEC. Only the fields of its Kind are set.
type Spec struct {
	Kind Kind `json:"kind"`
	// Ref is an expert teacher's ID, name or weights file.
	Ref string `json:"ref,omitempty"`
	// Dir, Layer and Expert name a checkpoint expert.
	Dir    string `json:"dir,omitempty"`
	Layer  int    `json:"layer,omitempty"`
	Expert int    `json:"expert,omitempty"`
	// BaseURL (without a trailing slash) and Model name a chat endpoint.
	BaseURL string `json:"base_url,omitempty"`
	Model   string `json:"model,omitempty"`
}

// ParseSpec parses a teacher SPEC:
//
//	expert:ID-or-NAME-or-FILE
//	moe:DIR#layer=L,expert=E
//	openai:BASE_URL?model=NAME      (BASE_URL is http:// or https://)
//
// Errors wrap ErrBadSpec and say what is wrong.
func ParseSpec(s string) (Spec, error) {
	bad := func(format string, a ...any) (Spec, error) {
		return Spec{}, fmt.Errorf("%w %q: %s", ErrBadSpec, clip(s), fmt.Sprintf(format, a...))
	}
	if len(s) > maxSpecLen {
		return bad("longer than %d bytes", maxSpecLen)
	}
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		return bad("control character at byte %d", i)
	}
	kind, rest, ok := strings.Cut(s, ":")
	if !ok {
		return bad("want expert:REF, moe:DIR#layer=L,expert=E or openai:BASE_URL?model=NAME")
	}
	switch Kind(kind) {
	case KindExpert:
		if strings.TrimSpace(rest) == "" {
			return bad("expert: needs an expert ID, name or weights file")
		}
		return Spec{Kind: KindExpert, Ref: rest}, nil
	case KindMoE:
		sp, err := parseMoE(rest)
		if err != nil {
			return bad("%v", err)
		}
		return sp, nil
	case KindOpenAI:
		sp, err := parseOpenAI(rest)
		if err != nil {
			return bad("%v", err)
		}
		return sp, nil
	default:
		return bad("unknown teacher kind %q (want expert, moe or openai)", kind)
	}
}

func parseMoE(rest string) (Spec, error) {
	i := strings.LastIndexByte(rest, '#')
	if i < 0 {
		return Spec{}, fmt.Errorf("moe: want DIR#layer=L,expert=E")
	}
	sp := Spec{Kind: KindMoE, Dir: rest[:i], Layer: -1, Expert: -1}
	if sp.Dir == "" {
		return Spec{}, fmt.Errorf("moe: empty checkpoint folder")
	}
	for _, kv := range strings.Split(rest[i+1:], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return Spec{}, fmt.Errorf("moe: %q is not key=value", kv)
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n >= 1<<20 || v != strconv.Itoa(n) {
			return Spec{}, fmt.Errorf("moe: %s=%q is not an integer in [0, %d)", k, v, 1<<20)
		}
		var dst *int
		switch k {
		case "layer":
			dst = &sp.Layer
		case "expert":
			dst = &sp.Expert
		default:
			return Spec{}, fmt.Errorf("moe: unknown key %q (want layer and expert)", k)
		}
		if *dst >= 0 {
			return Spec{}, fmt.Errorf("moe: %s given twice", k)
		}
		*dst = n
	}
	if sp.Layer < 0 || sp.Expert < 0 {
		return Spec{}, fmt.Errorf("moe: need both layer=L and expert=E")
	}
	return sp, nil
}

func parseOpenAI(rest string) (Spec, error) {
	u, err := url.Parse(rest)
	if err != nil {
		return Spec{}, fmt.Errorf("openai: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Spec{}, fmt.Errorf("openai: base URL must start with http:// or https://")
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return Spec{}, fmt.Errorf("openai: base URL needs a host, and no user info or fragment")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Spec{}, fmt.Errorf("openai: query: %v", err)
	}
	for k := range q {
		if k != "model" {
			return Spec{}, fmt.Errorf("openai: unknown query key %q (want model=NAME)", k)
		}
	}
	if len(q["model"]) != 1 || strings.TrimSpace(q.Get("model")) == "" {
		return Spec{}, fmt.Errorf("openai: need exactly one model=NAME")
	}
	model := q.Get("model")
	u.RawQuery, u.ForceQuery = "", false
	base := strings.TrimRight(u.String(), "/")
	return Spec{Kind: KindOpenAI, BaseURL: base, Model: model}, nil
}

// String renders the spec in the form ParseSpec reads.
func (s Spec) String() string {
	switch s.Kind {
	case KindExpert:
		return "expert:" + s.Ref
	case KindMoE:
		return fmt.Sprintf("moe:%s#layer=%d,expert=%d", s.Dir, s.Layer, s.Expert)
	case KindOpenAI:
		return "openai:" + s.BaseURL + "?" + url.Values{"model": {s.Model}}.Encode()
	}
	return string(s.Kind) + ":"
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
