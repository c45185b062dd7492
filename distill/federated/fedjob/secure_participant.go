package fedjob

import (
	"crypto/rand"
	"fmt"

	"github.com/meshnode/meshnode/distill/federated/secagg"
)

// SecureParticipant is a participant's side of one secure round: it builds each step's
// message from the coordinator's previous answer. Its keys live in memory only.
type SecureParticipant struct {
	spec     *Spec
	job      string
	round    int
	instance int64
	me       string
	signer   Signer
	verify   Verifier
	client   *secagg.Client
	n        int // the roster's size, which sets the fixed-point scale
}

// NewSecureParticipant starts this node's part in round instance of the job.
func NewSecureParticipant(spec *Spec, round int, instance int64, signer Signer, verify Verifier) (*SecureParticipant, error) {
	p := &SecureParticipant{spec: spec, job: spec.ID(), round: round, instance: instance, me: signer.ID(), signer: signer, verify: verify}
	c, err := secagg.NewClient(rand.Reader, p.me, secagg.Config{Session: SecureSession(p.job, round, instance),
		Degree: spec.SecAggNeighbours, Threshold: spec.SecAggThreshold})
	if err != nil {
		return nil, err
	}
	p.client = c
	return p, nil
}

func (p *SecureParticipant) msg(step string) *SecureMsg {
	return &SecureMsg{Job: p.job, Round: p.round, Instance: p.instance, Step: step}
}

// Poll asks for the result of step.
func (p *SecureParticipant) Poll(step string) *SecureMsg {
	m := p.msg(StepPoll)
	m.Poll = step
	return m
}

// Advert is the first message: the signed keys, with the local training time.
func (p *SecureParticipant) Advert(seconds, fetchSeconds float64) (*SecureMsg, error) {
	a, err := SignAdvert(p.signer, p.job, p.round, p.instance, p.client.Advert())
	if err != nil {
		return nil, err
	}
	m := p.msg(StepAdvert)
	m.Advert, m.Seconds, m.FetchSeconds = a, seconds, fetchSeconds
	return m, nil
}

// Dealing checks the roster's signatures and deals this node's secrets.
func (p *SecureParticipant) Dealing(roster []SignedAdvert) (*SecureMsg, error) {
	if err := VerifyRoster(p.verify, p.job, p.round, p.instance, roster); err != nil {
		return nil, err
	}
	ads := make([]secagg.Advert, len(roster))
	for i, a := range roster {
		ads[i] = a.Advert
	}
	d, err := p.client.ShareKeys(ads)
	if err != nil {
		return nil, fmt.Errorf("deal shares: %w", err)
	}
	p.n = len(roster)
	m := p.msg(StepDealing)
	m.Dealing = d
	return m, nil
}

// Masked masks this node's update (clipped, weighted and quantized as the spec says).
func (p *SecureParticipant) Masked(deliveries []secagg.Delivery, delta []float64, samples int, loss float64) (*SecureMsg, error) {
	x, err := SecureInput(p.spec, p.n, delta, samples, loss)
	if err != nil {
		return nil, err
	}
	y, err := p.client.Mask(deliveries, x)
	if err != nil {
		return nil, fmt.Errorf("mask update: %w", err)
	}
	m := p.msg(StepMasked)
	m.Masked = y
	return m, nil
}

// Reveal answers the list of survivors with this node's shares of its neighbours' secrets.
func (p *SecureParticipant) Reveal(survivors []string) (*SecureMsg, error) {
	r, err := p.client.Unmask(survivors)
	if err != nil {
		return nil, fmt.Errorf("reveal shares: %w", err)
	}
	m := p.msg(StepReveal)
	m.Reveals = r
	return m, nil
}
