package dataset

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
)

func mathClasses() []string      { return []string{"even", "odd"} }
func reasoningClasses() []string { return []string{"yes", "no"} }

// balanced draws perClass samples of every class: sample i is asked for
// class i mod classes, and gen is called until it produces one of that
// class (gen returns a text and the class its computed answer falls in).
// Classes therefore alternate, and the result is deterministic for rng.
func balanced(ctx context.Context, name string, classes []string, perClass int, rng *rand.Rand, gen func(*rand.Rand) (string, int)) (*TextSet, error) {
	t := &TextSet{Classes: classes}
	for i := 0; i < perClass*len(classes); i++ {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		want := i % len(classes)
		for tries := 0; ; tries++ {
			if tries > 10000 {
				return nil, fmt.Errorf("%s suite: generator bug: no sample of class %s in %d tries", name, classes[want], tries)
			}
			text, c := gen(rng)
			if c == want {
				t.Texts = append(t.Texts, text)
				t.Y = append(t.Y, c)
				break
			}
		}
	}
	return t, nil
}

// genMathematics asks for the parity of an integer expression: two or three
// operands in [0, 99] joined by +, - or × (written as symbols or words:
// "plus", "minus", "times"), evaluated with the usual precedence (× first,
// then left to right), inside one of a few question templates. The class is
// the parity of the exact value ("even" or "odd"). The parity depends only
// on the operands' last digits and the operators, so a bag of hashed
// n-grams carries the answer, though it has to be combined across operands.
func genMathematics(ctx context.Context, _ SuiteSources, perClass int, seed uint64) (*TextSet, error) {
	templates := []string{"What is %s?", "Compute %s.", "%s = ?", "Evaluate: %s", "Is %s even or odd?", "Find the value of %s."}
	return balanced(ctx, SuiteMathematics, mathClasses(), perClass, NewRand(seed), func(rng *rand.Rand) (string, int) {
		k := 2 + rng.IntN(2)
		nums := make([]int64, k)
		ops := make([]byte, k-1)
		var b strings.Builder
		for i := range nums {
			nums[i] = int64(rng.IntN(100))
			if i > 0 {
				ops[i-1] = "+-*"[rng.IntN(3)]
				b.WriteString(renderOp(ops[i-1], rng))
			}
			fmt.Fprintf(&b, "%d", nums[i])
		}
		v := evalArith(nums, ops)
		class := 0
		if v%2 != 0 {
			class = 1
		}
		return fmt.Sprintf(pick(rng, templates), b.String()), class
	})
}

func renderOp(op byte, rng *rand.Rand) string {
	words := map[byte][2]string{'+': {" + ", " plus "}, '-': {" - ", " minus "}, '*': {" * ", " times "}}
	return words[op][rng.IntN(2)]
}

// evalArith evaluates nums[0] ops[0] nums[1] ... with × before + and -.
func evalArith(nums []int64, ops []byte) int64 {
	var sum int64
	sign, term := int64(1), nums[0]
	for i, op := range ops {
		if op == '*' {
			term *= nums[i+1]
			continue
		}
		sum += sign * term
		sign, term = 1, nums[i+1]
		if op == '-' {
			sign = -1
		}
	}
	return sum + sign*term
}

// genReasoning mixes two yes/no tasks in equal shares.
//
//   - Propositional logic: "Is it true that true and not false or false?" —
//     two to four literals true/false, each possibly negated with "not",
//     joined by "and"/"or" with the usual precedence (not, then and, then
//     or). The answer is the formula's value.
//   - Ordering: three of five people in a strict order of height or age,
//     given by two premises about neighbours ("Ann is taller than Bob.",
//     "Cai is shorter than Bob.", in random order and wording), then a
//     question about any two of them ("Is Cai taller than Ann?"). The
//     answer follows by transitivity.
func genReasoning(ctx context.Context, _ SuiteSources, perClass int, seed uint64) (*TextSet, error) {
	return balanced(ctx, SuiteReasoning, reasoningClasses(), perClass, NewRand(seed), func(rng *rand.Rand) (string, int) {
		var text string
		var ans bool
		if rng.IntN(2) == 0 {
			text, ans = propositional(rng)
		} else {
			text, ans = ordering(rng)
		}
		if ans {
			return text, 0
		}
		return text, 1
	})
}

func propositional(rng *rand.Rand) (string, bool) {
	k := 2 + rng.IntN(3)
	words := []string{"Is it true that"}
	value, conj := false, true // value of the finished disjuncts, and of the current conjunction
	for i := 0; i < k; i++ {
		if i > 0 {
			if rng.IntN(2) == 0 {
				words = append(words, "and")
			} else {
				words = append(words, "or")
				value = value || conj
				conj = true
			}
		}
		lit := rng.IntN(2) == 0
		neg := rng.IntN(3) == 0
		if neg {
			words = append(words, "not")
		}
		words = append(words, fmt.Sprint(lit))
		conj = conj && (lit != neg)
	}
	value = value || conj
	return strings.Join(words, " ") + "?", value
}

func ordering(rng *rand.Rand) (string, bool) {
	people := []string{"Ann", "Bob", "Cai", "Dee", "Eli"}
	dims := [][2]string{{"taller", "shorter"}, {"older", "younger"}}
	dim := pick(rng, dims)
	idx := rng.Perm(len(people))[:3] // idx[0] > idx[1] > idx[2] on dim
	rank := map[string]int{}
	for r, i := range idx {
		rank[people[i]] = r
	}
	premise := func(hi, lo string) string {
		if rng.IntN(2) == 0 {
			return fmt.Sprintf("%s is %s than %s.", hi, dim[0], lo)
		}
		return fmt.Sprintf("%s is %s than %s.", lo, dim[1], hi)
	}
	ps := []string{premise(people[idx[0]], people[idx[1]]), premise(people[idx[1]], people[idx[2]])}
	rng.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
	q := rng.Perm(3)[:2]
	a, b := people[idx[q[0]]], people[idx[q[1]]]
	rel := rng.IntN(2)
	ans := rank[a] < rank[b] // a is "more" than b
	if rel == 1 {
		ans = !ans
	}
	return fmt.Sprintf("%s %s Is %s %s than %s?", ps[0], ps[1], a, dim[rel], b), ans
}
