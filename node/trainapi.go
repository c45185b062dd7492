package node

import "github.com/meshnode/meshnode/distill/federated/fedjob"

// Federated training API paths.
const (
	PathTrainStart = "/api/v1/train/start"
	PathTrainJoin  = "/api/v1/train/join"
	PathTrainLeave = "/api/v1/train/leave"
	PathTrainJobs  = "/api/v1/train/jobs"
)

// TrainStartRequest asks the daemon to coordinate a federated training job.
type TrainStartRequest struct {
	Base            string  `json:"base"`         // expert ID or name to start from
	Domain          string  `json:"domain"`       // default: the base expert's first domain
	EvalDataset     string  `json:"eval_dataset"` // held-out data the coordinator measures each version on (its test part)
	Rounds          int     `json:"rounds"`
	LocalEpochs     int     `json:"local_epochs"`
	BatchSize       int     `json:"batch_size"`
	LR              float64 `json:"learning_rate"`
	ProxMu          float64 `json:"prox_mu"`
	MinParticipants int     `json:"min_participants"`
	MaxParticipants int     `json:"max_participants"`
	SoftDeadlineMS  int64   `json:"soft_deadline_ms"`
	DeadlineMS      int64   `json:"deadline_ms"`
	Aggregator      string  `json:"aggregator"`
	MaxShare        float64 `json:"max_share"`
	Trim            float64 `json:"trim"`
	ClipNorm        float64 `json:"clip_norm"`
	NoiseStd        float64 `json:"noise_std"`
	Seed            uint64  `json:"seed"`
	// Dataset, when set, makes the coordinator a participant too, training on this data set.
	Dataset string `json:"dataset,omitempty"`
}

// TrainJoinRequest joins (or, for leave, leaves) a job.
type TrainJoinRequest struct {
	Job     string `json:"job"`
	Dataset string `json:"dataset,omitempty"` // join only: the local data to train on
}

// TrainJobInfo is what a node knows of one job.
type TrainJobInfo struct {
	ID          string                `json:"id"`
	Spec        fedjob.Spec           `json:"spec"`
	Coordinator bool                  `json:"coordinator"` // this node coordinates it
	State       string                `json:"state"`       // round | done | stopped
	Round       int                   `json:"round"`
	Model       string                `json:"model"` // current (or final) version
	Deadline    int64                 `json:"deadline,omitempty"`
	Pending     int                   `json:"pending_updates,omitempty"` // coordinator: updates of the open round
	Error       string                `json:"error,omitempty"`           // coordinator: why the job stopped
	History     []fedjob.RoundSummary `json:"history"`
	Participant *TrainParticipation   `json:"participant,omitempty"` // this node's part in it
}

// TrainParticipation is this node's part in a job.
type TrainParticipation struct {
	Dataset   string `json:"dataset"`
	Samples   int    `json:"samples"`
	LastRound int    `json:"last_round"` // the last round it sent an update for
	Final     string `json:"final,omitempty"`
	Ended     string `json:"ended,omitempty"` // why it stopped taking part before the end
	LastError string `json:"last_error,omitempty"`
}
