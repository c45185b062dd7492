package querysvc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/store"
	"github.com/meshnode/meshnode/node"
	"github.com/meshnode/meshnode/routing"
)

// loaded is an expert ready to run.
type loaded struct {
	manifest *experts.Manifest
	net      *experts.Network
}

// serve is the stream handler of the query protocol.
func (s *Service) serve(ctx context.Context, from peer.ID, data []byte) ([]byte, error) {
	req, err := routing.DecodeRequest(data)
	if err != nil {
		return nil, err
	}
	if !s.exposure.Answers(req.Expert) { // hosted is not exposed: only served experts answer peers
		s.metrics.served.WithLabelValues("refused").Inc()
		return nil, fmt.Errorf("unknown expert %s: this node does not serve it", req.Expert)
	}
	if !req.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, req.Deadline)
		defer cancel()
	}
	resp, err := s.run(ctx, req)
	if err != nil {
		s.metrics.served.WithLabelValues("error").Inc()
		return nil, err
	}
	s.metrics.served.WithLabelValues("ok").Inc()
	return routing.EncodeResponse(resp), nil
}

// run answers a request with a hosted expert.
func (s *Service) run(ctx context.Context, req routing.Request) (routing.Response, error) {
	if !req.Deadline.IsZero() && time.Now().After(req.Deadline) {
		return routing.Response{}, fmt.Errorf("deadline expired %s ago", time.Since(req.Deadline).Round(time.Millisecond))
	}
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	l, err := s.load(ctx, req.Expert)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return routing.Response{}, fmt.Errorf("unknown expert %s: this node does not host it", req.Expert)
		}
		return routing.Response{}, err
	}
	return answer(ctx, l, req, s.decodes)
}

// answer runs a loaded expert on a request's input; slots, when not nil, bounds the image
// decodes running at once.
func answer(ctx context.Context, l *loaded, req routing.Request, slots chan struct{}) (routing.Response, error) {
	var x []float64
	var err error
	if req.Vector != nil {
		v := make([]float64, len(req.Vector))
		for i, f := range req.Vector {
			v[i] = float64(f)
		}
		x, err = l.manifest.Input.FromVector(v)
	} else if req.Image != nil {
		if slots != nil { // decoding costs memory: a few at a time
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
			case <-ctx.Done():
				return routing.Response{}, fmt.Errorf("waiting to decode the image: %w", ctx.Err())
			}
		}
		x, err = node.ImageFeaturesLimited(l.manifest.Input, bytes.NewReader(req.Image), false, node.ImagePixelLimit(l.manifest.Input))
	} else {
		x, err = l.manifest.Input.FromText(req.Text)
	}
	if err != nil {
		return routing.Response{}, err
	}
	for _, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return routing.Response{}, errors.New("input has a value that is not finite")
		}
	}
	t0 := time.Now()
	y, err := l.net.Predict(x)
	if err != nil {
		return routing.Response{}, err
	}
	resp := routing.Response{Expert: req.Expert, Output: make([]float32, len(y)), Compute: time.Since(t0)}
	best := 0
	for i, v := range y {
		resp.Output[i] = float32(v)
		if v > y[best] {
			best = i
		}
	}
	if l.manifest.Output.Kind == experts.OutputClasses {
		resp.Label = l.manifest.Output.Labels[best]
	}
	return resp, nil
}
