package kd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/meshnode/meshnode/experts"
)

// APIKeyEnv is the environment variable the CLI reads a chat teacher's API key from.
const APIKeyEnv = "MESHNODE_TEACHER_API_KEY"

// ErrTeacherUnreachable marks a chat endpoint that could not be connected to.
var ErrTeacherUnreachable = errors.New("teacher endpoint unreachable")

// ErrTeacherHTTP marks a chat endpoint that answered with an HTTP error.
var ErrTeacherHTTP = errors.New("teacher endpoint error")

// maxResponseSize bounds a chat response body.
const maxResponseSize = 1 << 20

// OpenAITeacher labels prompts through an OpenAI-compatible chat endpoint: one
// POST BASE_URL/chat/completions per prompt, at temperature 0, asking for one class name.
type OpenAITeacher struct {
	spec        Spec
	key         string
	client      *http.Client
	timeout     time.Duration
	concurrency int
}

var _ TextTeacher = (*OpenAITeacher)(nil)

// NewOpenAI returns a chat teacher for an openai spec. It does not contact the endpoint.
func NewOpenAI(sp Spec, o OpenOptions) *OpenAITeacher {
	t := &OpenAITeacher{spec: sp, key: o.APIKey, client: o.HTTPClient, timeout: o.RequestTimeout, concurrency: o.Concurrency}
	if t.client == nil {
		t.client = &http.Client{}
	}
	if t.timeout <= 0 {
		t.timeout = 60 * time.Second
	}
	if t.concurrency <= 0 {
		t.concurrency = 4
	}
	return t
}

// Info describes the teacher. Its ID is the identity CID of its spec string (a chat model has
// no content to address); its input and output specs are filled in by the distillation.
func (t *OpenAITeacher) Info() TeacherInfo {
	return TeacherInfo{Kind: KindOpenAI, Spec: t.spec.String(), Name: t.spec.Model, ID: identityCID(t.spec.String()),
		IDKind: "identity (sha2-256 of the spec)", Input: experts.InputSpec{Kind: experts.InputText},
		Output: experts.OutputSpec{Kind: experts.OutputClasses},
		Meta:   map[string]string{"kind": string(KindOpenAI), "base_url": t.spec.BaseURL, "model": t.spec.Model}}
}

// Label asks the endpoint to classify every prompt, a few at a time.
func (t *OpenAITeacher) Label(ctx context.Context, prompts []string, classes []string) ([][]float64, error) {
	if len(classes) < 2 {
		return nil, fmt.Errorf("teacher %s: need at least 2 classes, got %d", t.spec, len(classes))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make([][]float64, len(prompts))
	errs := make([]error, len(prompts))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(t.concurrency, len(prompts)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				p, err := t.labelOne(ctx, prompts[i], classes)
				if err != nil {
					errs[i] = fmt.Errorf("teacher %s: prompt %d %q: %w", t.spec, i, clip(prompts[i]), err)
					cancel()
					continue
				}
				out[i] = p
			}
		}()
	}
	for i := range prompts {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	var ctxErr error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if !errors.Is(err, context.Canceled) {
			return nil, err // the first real failure, not the cancellations it caused
		}
		ctxErr = err
	}
	if ctxErr != nil {
		return nil, ctxErr
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("teacher %s: %w", t.spec, err)
	}
	return out, nil
}

// chatRequest and chatResponse are the parts of the chat completions API the teacher uses.
type chatRequest struct {
	Model       string        `json:"model"`
	Messages    []chatMessage `json:"messages"`
	Temperature float64       `json:"temperature"`
	MaxTokens   int           `json:"max_tokens,omitempty"`
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatResponse struct {
	Choices []struct {
		Message chatMessage `json:"message"`
	} `json:"choices"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// SystemPrompt is the instruction sent with every prompt.
func SystemPrompt(classes []string) string {
	return "Classify the user's text into exactly one of these classes: " + strings.Join(classes, ", ") +
		`. Answer with the class name only, or with JSON {"label": "<class>"} or {"probabilities": {"<class>": p, ...}}.`
}

func (t *OpenAITeacher) labelOne(ctx context.Context, prompt string, classes []string) ([]float64, error) {
	content, err := t.complete(ctx, prompt, classes)
	if err != nil {
		return nil, err
	}
	return ParseAnswer(content, classes)
}

// complete sends one chat request, retrying once after a 429 or 5xx answer.
func (t *OpenAITeacher) complete(ctx context.Context, prompt string, classes []string) (string, error) {
	body, _ := json.Marshal(chatRequest{Model: t.spec.Model, Temperature: 0, MaxTokens: 256, Messages: []chatMessage{
		{Role: "system", Content: SystemPrompt(classes)}, {Role: "user", Content: prompt}}}) // plain structs: cannot fail
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
		content, retry, err := t.post(ctx, body)
		if err == nil {
			return content, nil
		}
		lastErr = err
		if !retry {
			break
		}
	}
	return "", lastErr
}

func (t *OpenAITeacher) post(ctx context.Context, body []byte) (content string, retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	url := t.spec.BaseURL + "/chat/completions"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "", false, fmt.Errorf("request %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if t.key != "" {
		req.Header.Set("Authorization", "Bearer "+t.key)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			return "", true, fmt.Errorf("POST %s: no answer within %s: %w", url, t.timeout, err)
		}
		if errors.Is(err, context.Canceled) {
			return "", false, err
		}
		return "", false, fmt.Errorf("%w: POST %s: %v", ErrTeacherUnreachable, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseSize+1))
	if err != nil {
		return "", true, fmt.Errorf("POST %s: reading the answer: %w", url, err)
	}
	if len(raw) > maxResponseSize {
		return "", false, fmt.Errorf("POST %s: answer over %d bytes", url, maxResponseSize)
	}
	var cr chatResponse
	jsonErr := json.Unmarshal(raw, &cr)
	if resp.StatusCode/100 != 2 {
		msg := strings.TrimSpace(clip(string(raw)))
		if jsonErr == nil && cr.Error != nil && cr.Error.Message != "" {
			msg = clip(cr.Error.Message)
		}
		retry := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		return "", retry, fmt.Errorf("%w: POST %s: HTTP %d: %s", ErrTeacherHTTP, url, resp.StatusCode, msg)
	}
	if jsonErr != nil {
		return "", false, fmt.Errorf("%w: POST %s: response is not chat completion JSON: %v", ErrMalformedAnswer, url, jsonErr)
	}
	if len(cr.Choices) == 0 {
		return "", false, fmt.Errorf("%w: POST %s: response has no choices", ErrMalformedAnswer, url)
	}
	return cr.Choices[0].Message.Content, false, nil
}
