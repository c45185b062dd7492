package api

import (
	"github.com/meshnode/meshnode/distill/federated/fedjob"
	"github.com/meshnode/meshnode/experts"
)

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
	LRDecay         float64 `json:"lr_decay,omitempty"`        // the local learning rate's factor per round (0: constant)
	Optimizer       string  `json:"optimizer,omitempty"`       // participants' local optimizer: adam (default) or sgd
	ServerMomentum  float64 `json:"server_momentum,omitempty"` // the coordinator's momentum over rounds (0: FedAvg)
	MinParticipants int     `json:"min_participants"`
	MaxParticipants int     `json:"max_participants"`
	SoftDeadlineMS  int64   `json:"soft_deadline_ms"`
	DeadlineMS      int64   `json:"deadline_ms"`
	Aggregator      string  `json:"aggregator"`
	MaxShare        float64 `json:"max_share"`
	Trim            float64 `json:"trim"`
	ClipNorm        float64 `json:"clip_norm"`
	NoiseStd        float64 `json:"noise_std"` // DP noise multiplier z; with TargetEpsilon and 0, calibrated
	DPDelta         float64 `json:"dp_delta,omitempty"`
	TargetEpsilon   float64 `json:"target_epsilon,omitempty"`
	// RecordClipNorm turns on record-level DP: participants train with DP-SGD, clipping every
	// record's gradient to it; RecordNoise is the noise multiplier, or 0 with
	// RecordTargetEpsilon for each participant to calibrate its own.
	RecordClipNorm      float64 `json:"record_clip_norm,omitempty"`
	RecordNoise         float64 `json:"record_noise,omitempty"`
	RecordTargetEpsilon float64 `json:"record_target_epsilon,omitempty"`
	// SecureAggregation has the coordinator learn only the sum of the updates (fedavg with
	// ClipNorm); SecAgg* tune it (0: the defaults).
	SecureAggregation bool    `json:"secure_aggregation,omitempty"`
	SecAggNeighbours  int     `json:"secagg_neighbours,omitempty"`
	SecAggThreshold   float64 `json:"secagg_threshold,omitempty"`
	SecAggPhaseMS     int64   `json:"secagg_phase_ms,omitempty"`
	Seed              uint64  `json:"seed"`
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
	ID          string      `json:"id"`
	Spec        fedjob.Spec `json:"spec"`
	Coordinator bool        `json:"coordinator"` // this node coordinates it
	State       string      `json:"state"`       // round | done | stopped
	Round       int         `json:"round"`
	Model       string      `json:"model"` // current (or final) version
	Deadline    int64       `json:"deadline,omitempty"`
	Pending     int         `json:"pending_updates,omitempty"` // coordinator: updates of the open round
	Error       string      `json:"error,omitempty"`           // coordinator: why the job stopped
	// EndReason says why a job ended before its last round (its privacy budget).
	EndReason string `json:"end_reason,omitempty"`
	// Epsilon is the differential-privacy ε spent so far at the spec's δ (0 without noise).
	Epsilon     float64               `json:"epsilon,omitempty"`
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
	// RecordEpsilon is the record-level ε (DP-SGD) this node's data has spent in the job.
	RecordEpsilon float64 `json:"record_epsilon,omitempty"`
}

// TrainRequest is what `meshnode expert train` asks for.
type TrainRequest struct {
	Dataset     string                   `json:"dataset"`                // catalog name: fashion-mnist, iris, wine, breast-cancer, digits, csv:PATH
	Limit       int                      `json:"limit,omitempty"`        // use at most this many training rows (0: all)
	Hidden      []int                    `json:"hidden"`                 // hidden layer widths
	Activation  string                   `json:"activation,omitempty"`   // of the hidden layers
	Epochs      int                      `json:"epochs"`                 // 0 makes an initialised, untrained expert
	BatchSize   int                      `json:"batch_size,omitempty"`   // 0: the config's
	LR          float64                  `json:"lr,omitempty"`           // 0: the optimiser's default
	Optimizer   string                   `json:"optimizer,omitempty"`    // adam | sgd
	WeightDecay float64                  `json:"weight_decay,omitempty"` //
	Patience    int                      `json:"patience"`               // -1: the config's
	ValSplit    float64                  `json:"val_split,omitempty"`    // share of the training rows held out for validation (default 0.1)
	Seed        uint64                   `json:"seed"`                   // initial weights, split and shuffling
	Name        string                   `json:"name,omitempty"`         // default: the dataset name
	Domains     []string                 `json:"domains,omitempty"`      // default: the dataset name
	Progress    func(experts.EpochStats) `json:"-"`
}

// PathExpertTrain trains an expert in the daemon and stores it in the daemon's store; the
// answer streams TrainEvents (one per epoch, then the result or the error). Closing the
// request cancels the training.
const PathExpertTrain = "/api/v1/experts/train"

// TrainEvent is one line of PathExpertTrain's answer.
type TrainEvent = JobEvent[experts.EpochStats, TrainReport]

// TrainReport is what training produced.
type TrainReport struct {
	ID        string               `json:"id"`
	Manifest  *experts.Manifest    `json:"manifest"`
	Epochs    []experts.EpochStats `json:"epochs"`
	BestEpoch int                  `json:"best_epoch"`
	Test      experts.Evaluation   `json:"test"`
	Seconds   float64              `json:"train_seconds"`
	SamplesPS float64              `json:"samples_per_second"`
}

// EvalReport is the result of evaluating a stored expert on a data set.
type EvalReport struct {
	ID         string             `json:"id"`
	Name       string             `json:"name"`
	Dataset    string             `json:"dataset"`
	Digest     string             `json:"digest"`
	Evaluation experts.Evaluation `json:"evaluation"`
	Labels     []string           `json:"labels"`
	Seconds    float64            `json:"seconds"`
}
