package kd

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/dataset"
)

// classTask is a class transfer set: inputs with the teacher's probabilities and hard labels,
// and held-out inputs with the teacher's probabilities and (when gold) true labels.
type classTask struct {
	in     experts.InputSpec
	labels []string
	trainX []float32
	trainY []int // hard labels: true labels, or the teacher's argmax when there are none
	trainP []float64
	testX  []float32
	testY  []int // true labels; nil when only the teacher's are known
	testP  []float64
	// labelled is how many leading training rows have true labels (the hard-label baseline
	// learns from those alone); 0 means all.
	labelled int
	data     DataReport
}

// distillClasses distils a class teacher that takes vectors, on a labelled data set.
func distillClasses(ctx context.Context, t VectorTeacher, o Options) (*Result, error) {
	info := t.Info()
	if o.Train == nil || o.Test == nil {
		return nil, fmt.Errorf("distill: class teacher %s needs a data set to label (--dataset)", info.Spec)
	}
	classes := info.Output.Dim
	for _, d := range []*dataset.Dataset{o.Train, o.Test} {
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("distill: %w", err)
		}
		if d.Dim != info.Input.Dim || len(d.Classes) != classes {
			return nil, fmt.Errorf("distill: data set %s has %d features and %d classes; teacher %s takes %d and has %d",
				d.Name, d.Dim, len(d.Classes), info.Spec, info.Input.Dim, classes)
		}
	}
	if err := checkBudget(o, info.Input.Dim, classes, experts.OutputSoftmax, 0); err != nil {
		return nil, err // before spending the teacher's time
	}
	o.report("teacher", 0, 2, nil)
	trainP, err := t.Outputs(ctx, toFloat64(o.Train.X), o.Train.Len())
	if err != nil {
		return nil, fmt.Errorf("distill: labelling %s: %w", o.Train.Name, err)
	}
	o.report("teacher", 1, 2, nil)
	testP, err := t.Outputs(ctx, toFloat64(o.Test.X), o.Test.Len())
	if err != nil {
		return nil, fmt.Errorf("distill: labelling %s: %w", o.Test.Name, err)
	}
	trainX, trainY := o.Train.X, o.Train.Y
	source := "data set " + o.Train.Name + " labelled by the teacher"
	if u := o.Unlabelled; u != nil && u.Len() > 0 {
		if u.Dim != info.Input.Dim {
			return nil, fmt.Errorf("distill: unlabelled data %s has %d features; teacher %s takes %d", u.Name, u.Dim, info.Spec, info.Input.Dim)
		}
		up, err := t.Outputs(ctx, toFloat64(u.X), u.Len())
		if err != nil {
			return nil, fmt.Errorf("distill: labelling %s: %w", u.Name, err)
		}
		trainX = append(append(make([]float32, 0, len(trainX)+len(u.X)), trainX...), u.X...)
		trainY = append([]int(nil), trainY...)
		for r := 0; r < u.Len(); r++ {
			trainY = append(trainY, argmaxRow(up[r*classes:(r+1)*classes]))
		}
		trainP = append(trainP, up...)
		source += fmt.Sprintf(", plus %d rows of %s labelled by the teacher alone", u.Len(), u.Name)
	}
	o.report("teacher", 2, 2, nil)
	in := info.Input
	if o.Input != nil {
		in = *o.Input
	}
	labels := info.Output.Labels
	if len(labels) != classes {
		labels = o.Train.Classes
	}
	return runClasses(ctx, info, o, classTask{in: in, labels: labels,
		trainX: trainX, trainY: trainY, trainP: trainP, labelled: o.Train.Len(), testX: o.Test.X, testY: o.Test.Y, testP: testP,
		data: DataReport{Source: source, Train: o.Train.Name,
			TrainRows: len(trainY), Test: o.Test.Name, TestRows: o.Test.Len(), TestDigest: o.Test.Digest()}})
}

// distillText distils a chat teacher on a prompt set.
func distillText(ctx context.Context, t TextTeacher, o Options) (*Result, error) {
	info := t.Info()
	classes, gold, err := promptClasses(o.Prompts, o.Classes)
	if err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	if o.TextFeatures.Dim == 0 {
		o.TextFeatures = dataset.DefaultTextFeatures()
	}
	if err := o.TextFeatures.Validate(); err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	share := o.TestShare
	if share == 0 {
		share = 0.2
	}
	n := len(o.Prompts)
	nt := int(share * float64(n))
	if share <= 0 || share >= 1 || nt < 1 || n-nt < 2 {
		return nil, fmt.Errorf("distill: %d prompts cannot be split into training and a held-out share of %g (need at least 5)", n, share)
	}
	if err := checkBudget(o, o.TextFeatures.Dim, len(classes), experts.OutputSoftmax, 0); err != nil {
		return nil, err // before spending the teacher's time
	}
	texts := make([]string, n)
	for i, p := range o.Prompts {
		texts[i] = p.Text
	}
	o.report("teacher", 0, n, nil)
	probs, err := t.Label(ctx, texts, classes)
	if err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	o.report("teacher", n, n, nil)
	tf := o.TextFeatures
	perm := rand.New(rand.NewPCG(o.Seed, 0x74657874)).Perm(n) // "text"
	task := classTask{in: experts.InputSpec{Kind: experts.InputText, Dim: tf.Dim, Preprocess: tf.Spec()}, labels: classes}
	feat := make([]float32, tf.Dim)
	var testTexts []string
	for k, i := range perm {
		if err := tf.Extract(texts[i], feat); err != nil {
			return nil, fmt.Errorf("distill: prompt %d: %w", i, err)
		}
		y := argmaxRow(probs[i])
		if gold != nil {
			y = gold[i]
		}
		if k < nt {
			task.testX, task.testP = append(task.testX, feat...), append(task.testP, probs[i]...)
			task.testY = append(task.testY, y)
			testTexts = append(testTexts, texts[i])
		} else {
			task.trainX, task.trainP = append(task.trainX, feat...), append(task.trainP, probs[i]...)
			task.trainY = append(task.trainY, y)
		}
	}
	if gold == nil {
		task.testY = nil
	}
	task.data = DataReport{Source: fmt.Sprintf("%d prompts labelled by the teacher, featurised by %s", n, tf.Spec()),
		Train: "prompts:train", TrainRows: n - nt, Test: "prompts:held-out", TestRows: nt, TestDigest: textDigest(testTexts)}
	return runClasses(ctx, info, o, task)
}

// promptClasses returns the classes (given, or the sorted distinct labels) and each prompt's
// class index when every prompt has a label (nil otherwise).
func promptClasses(prompts []Prompt, given []string) ([]string, []int, error) {
	if len(prompts) == 0 {
		return nil, nil, fmt.Errorf("no prompts to label")
	}
	classes := given
	labelled := 0
	for _, p := range prompts {
		if strings.TrimSpace(p.Text) == "" {
			return nil, nil, fmt.Errorf("a prompt has no text")
		}
		if p.Label != "" {
			labelled++
		}
	}
	if classes == nil {
		seen := map[string]bool{}
		for _, p := range prompts {
			if p.Label != "" && !seen[p.Label] {
				seen[p.Label] = true
				classes = append(classes, p.Label)
			}
		}
		sort.Strings(classes)
	}
	if len(classes) < 2 {
		return nil, nil, fmt.Errorf("need at least 2 classes (give them, or label the prompts), got %d", len(classes))
	}
	if labelled != len(prompts) {
		return classes, nil, nil
	}
	index := map[string]int{}
	for k, c := range classes {
		index[c] = k
	}
	gold := make([]int, len(prompts))
	for i, p := range prompts {
		k, ok := index[p.Label]
		if !ok {
			return nil, nil, fmt.Errorf("prompt %d has label %q, which is not one of the classes %s", i, p.Label, strings.Join(classes, ", "))
		}
		gold[i] = k
	}
	return classes, gold, nil
}

// runClasses trains the student (and the hard-label baseline) on a class task and measures
// both against the teacher on the held-out rows.
func runClasses(ctx context.Context, info TeacherInfo, o Options, task classTask) (*Result, error) {
	c := len(task.labels)
	budget, err := budgetFor(o, 0)
	if err != nil {
		return nil, err
	}
	arch, err := SizeStudent(task.in.Dim, c, experts.OutputSoftmax, budget)
	if err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	if o.Epochs == 0 {
		bs := o.BatchSize
		if bs <= 0 {
			bs = 64
		}
		steps := max(1, (len(task.trainY)+bs-1)/bs) // per epoch
		o.Epochs = min(500, max(10, (2000+steps-1)/steps))
	}
	train := experts.Samples{X: task.trainX, Dim: task.in.Dim, Labels: task.trainY,
		Targets: tempered(task.trainP, c, o.Temperature), TargetDim: c}
	student, err := newStudent(arch, task.in, task.trainX, o.Seed)
	if err != nil {
		return nil, err
	}
	baseline := student.Clone()
	cfg := o.trainConfig("train")
	cfg.Temperature, cfg.SoftWeight = o.Temperature, o.SoftWeight
	if _, err := experts.Train(ctx, student, train, experts.Samples{}, cfg); err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	rep := newReport(info, o, budget, student, "classes")
	rep.Data = task.data
	cm, err := classMetrics(student, task)
	if err != nil {
		return nil, err
	}
	rep.Classes = cm
	rep.Metric, rep.TeacherMetric, rep.StudentMetric = "accuracy", cm.TeacherAccuracy, cm.StudentAccuracy
	if task.testY == nil {
		rep.Metric, rep.TeacherMetric, rep.StudentMetric = "agreement with the teacher", 1, cm.Agreement
	}
	rep.Retention = ratio(rep.StudentMetric, rep.TeacherMetric)
	if o.Baseline {
		hard := train
		hard.Targets, hard.TargetDim = nil, 0
		if task.labelled > 0 {
			hard.X, hard.Labels = hard.X[:task.labelled*hard.Dim], hard.Labels[:task.labelled]
		}
		if _, err := experts.Train(ctx, baseline, hard, experts.Samples{}, o.trainConfig("baseline")); err != nil {
			return nil, fmt.Errorf("distill: baseline: %w", err)
		}
		bm, err := classMetrics(baseline, task)
		if err != nil {
			return nil, err
		}
		b := &BaselineReport{Name: "hard-labels", Params: baseline.ParamCount(),
			Description: "the same architecture, initial weights, seed and epochs trained on the true hard labels alone"}
		b.Metric = bm.StudentAccuracy
		if task.testY == nil {
			b.Metric = bm.Agreement
		}
		b.Retention = ratio(b.Metric, rep.TeacherMetric)
		rep.Baseline = b
	}
	evals := []experts.EvalResult{{Dataset: task.data.Test, Digest: task.data.TestDigest, Samples: task.data.TestRows,
		Metric: metricName(rep.Metric), Value: rep.StudentMetric},
		{Dataset: task.data.Test, Digest: task.data.TestDigest, Samples: task.data.TestRows, Metric: "retention", Value: rep.Retention}}
	out := experts.OutputSpec{Kind: experts.OutputClasses, Dim: c, Labels: task.labels}
	return finish(ctx, info, o, student, task.in, out, evals, rep)
}

func metricName(m string) string {
	if m == "accuracy" {
		return m
	}
	return "teacher-agreement"
}

// classMetrics measures the student against true labels (when known) and the teacher's argmax.
func classMetrics(student *experts.Network, task classTask) (*ClassMetrics, error) {
	c, dim := len(task.labels), task.in.Dim
	rows := len(task.testX) / dim
	probs, err := student.Forward(toFloat64(task.testX), rows)
	if err != nil {
		return nil, fmt.Errorf("distill: evaluate student: %w", err)
	}
	var agree, studentOK, teacherOK int
	for r := 0; r < rows; r++ {
		s, t := argmaxRow(probs[r*c:(r+1)*c]), argmaxRow(task.testP[r*c:(r+1)*c])
		if s == t {
			agree++
		}
		if task.testY != nil {
			if s == task.testY[r] {
				studentOK++
			}
			if t == task.testY[r] {
				teacherOK++
			}
		}
	}
	n := float64(max(rows, 1))
	m := &ClassMetrics{Agreement: float64(agree) / n, TrueLabels: task.testY != nil}
	if task.testY != nil {
		m.StudentAccuracy, m.TeacherAccuracy = float64(studentOK)/n, float64(teacherOK)/n
	}
	return m, nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// checkBudget fails when the budget cannot hold a student of the given widths.
func checkBudget(o Options, in, out int, head string, teacherParams int) error {
	budget, err := budgetFor(o, teacherParams)
	if err != nil {
		return err
	}
	if _, err := SizeStudent(in, out, head, budget); err != nil {
		return fmt.Errorf("distill: %w", err)
	}
	return nil
}
