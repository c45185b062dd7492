package kd

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/meshnode/meshnode/experts"
)

// TeacherInfo describes a teacher: what it is, the ID a student's manifest links to as its
// parent, and what it takes and returns.
type TeacherInfo struct {
	Kind Kind   `json:"kind"`
	Spec string `json:"spec"`
	Name string `json:"name"`
	// ID is the parent link of a student: an expert's manifest CID, the CID of a checkpoint
	// expert's dequantised tensors, or the identity CID of a chat endpoint and model.
	ID cid.Cid `json:"id"`
	// IDKind says what ID is the CID of.
	IDKind string            `json:"id_kind"`
	Params int               `json:"params,omitempty"` // 0 when unknown (a chat model)
	Input  experts.InputSpec `json:"input"`
	// Output is classes (with labels) or a vector.
	Output experts.OutputSpec `json:"output"`
	// Meta is copied into the student manifest's Meta with a "teacher." prefix.
	Meta map[string]string `json:"meta,omitempty"`
}

// Teacher is anything a student can learn from.
type Teacher interface {
	// Info describes the teacher. It is fixed once the teacher is open.
	Info() TeacherInfo
}

// VectorTeacher is a teacher that maps feature vectors to outputs.
type VectorTeacher interface {
	Teacher
	// Outputs runs rows inputs (row-major, rows × Info().Input.Dim) and returns rows ×
	// Info().Output.Dim values: class probabilities (at temperature 1) for class teachers, the
	// output vectors otherwise. The result is freshly allocated; x is not modified.
	Outputs(ctx context.Context, x []float64, rows int) ([]float64, error)
}

// TextTeacher is a teacher that labels text.
type TextTeacher interface {
	Teacher
	// Label returns one distribution over classes for each prompt, in order (one-hot when the
	// teacher names a class without probabilities). It fails on the first prompt whose answer
	// cannot be had or parsed, naming the prompt.
	Label(ctx context.Context, prompts []string, classes []string) ([][]float64, error)
}

// OpenOptions configure Open.
type OpenOptions struct {
	// Experts resolves expert:ID-or-NAME teachers; nil allows only weights files.
	Experts ExpertSource
	// APIKey authenticates to a chat endpoint ("" sends no Authorization header). The CLI reads
	// it from the environment variable APIKeyEnv.
	APIKey string
	// HTTPClient is the chat client's transport (default: a client without a global timeout;
	// RequestTimeout bounds each request).
	HTTPClient *http.Client
	// RequestTimeout bounds one chat request (default 60 s).
	RequestTimeout time.Duration
	// Concurrency is how many chat requests run at once (default 4).
	Concurrency int
}

// Open opens the teacher a spec names.
func Open(ctx context.Context, sp Spec, o OpenOptions) (Teacher, error) {
	switch sp.Kind {
	case KindExpert:
		return OpenExpert(ctx, sp.Ref, o.Experts)
	case KindMoE:
		return OpenMoE(ctx, sp.Dir, sp.Layer, sp.Expert)
	case KindOpenAI:
		return NewOpenAI(sp, o), nil
	}
	return nil, fmt.Errorf("%w: unknown teacher kind %q", ErrBadSpec, sp.Kind)
}

// identityCID is the CID (v1, raw, sha2-256) of a string that names something with no content
// of its own to address, such as a chat model behind an endpoint.
func identityCID(s string) cid.Cid {
	h, _ := multihash.Sum([]byte(s), multihash.SHA2_256, -1) // sha2-256 is always registered
	return cid.NewCidV1(cid.Raw, h)
}
