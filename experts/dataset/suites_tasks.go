package dataset

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
)

func toolClasses() []string {
	return []string{"calculator", "search", "calendar", "unit_converter", "weather", "translator"}
}

func contextClasses() []string { return []string{"answerable", "unanswerable"} }

// toolTemplates holds each tool's request templates (in toolClasses order).
// A {slot} is filled from toolSlots. Slots are shared between tools on
// purpose (numbers, cities, days, people), so the request's wording, not a
// single word, decides the tool.
func toolTemplates() [][]string {
	return [][]string{
		{"What is {n} times {n}?", "Add {n} and {n}.", "Calculate {n}% of {n}.", "What is the square root of {n}?",
			"How much is {n} divided by {n}?", "Subtract {n} from {n} for me."},
		{"Who wrote {book}?", "Find articles about {topic}.", "Look up the population of {city}.",
			"Search the web for {topic} reviews.", "When was {person} born?", "Find the history of {city}."},
		{"Schedule a meeting with {person} on {day} at {time}.", "What is on my calendar {day}?",
			"Move my {event} to {day}.", "Remind me about the {event} at {time}.", "Cancel the {event} on {day}.",
			"Am I free {day} at {time}?"},
		{"Convert {n} {unit} to {unit2}.", "How many {unit2} are in {n} {unit}?", "What is {n} {unit} in {unit2}?",
			"Change {n} {unit} into {unit2}, please."},
		{"Will it rain in {city} {day}?", "What is the forecast for {city}?", "How hot will it be in {city} on {day}?",
			"Do I need an umbrella in {city} {day}?", "Is it windy in {city} at {time}?"},
		{"Translate '{phrase}' into {lang}.", "How do you say '{phrase}' in {lang}?", "What does '{foreign}' mean in English?",
			"Give me the {lang} for '{phrase}'."},
	}
}

func toolSlots() map[string][]string {
	return map[string][]string{
		"book":    {"Moby Dick", "War and Peace", "Dune", "Emma", "Ulysses", "Beloved"},
		"topic":   {"solar panels", "electric cars", "coffee", "chess openings", "sourdough", "laptops"},
		"city":    {"Paris", "Lagos", "Osaka", "Lima", "Oslo", "Denver", "Cairo", "Perth"},
		"person":  {"Ada Lovelace", "Marie Curie", "Alan Turing", "my manager", "Dr. Patel", "Sam"},
		"day":     {"today", "tomorrow", "on Monday", "on Friday", "next week", "this weekend"},
		"time":    {"9 am", "noon", "3 pm", "6:30 pm", "10 o'clock"},
		"event":   {"dentist appointment", "team meeting", "flight", "yoga class", "lunch"},
		"unit":    {"miles", "kilograms", "liters", "feet", "ounces", "degrees Celsius"},
		"unit2":   {"kilometers", "pounds", "gallons", "meters", "grams", "degrees Fahrenheit"},
		"phrase":  {"good morning", "thank you", "where is the station", "how much is this", "I am lost"},
		"foreign": {"bonjour", "danke", "gracias", "arigato", "obrigado"},
		"lang":    {"French", "German", "Spanish", "Japanese", "Italian"},
	}
}

// genToolUse fills a template of the wanted tool (perClass requests per
// tool). The tool is the answer by construction.
func genToolUse(ctx context.Context, _ SuiteSources, perClass int, seed uint64) (*TextSet, error) {
	templates, slots := toolTemplates(), toolSlots()
	return balanced(ctx, SuiteToolUse, toolClasses(), perClass, NewRand(seed), func(rng *rand.Rand) (string, int) {
		c := rng.IntN(len(templates))
		return fillSlots(pick(rng, templates[c]), slots, rng), c
	})
}

// fillSlots replaces each {name} in tmpl with a random value of slots[name]
// and each {n} with a number in [2, 999].
func fillSlots(tmpl string, slots map[string][]string, rng *rand.Rand) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		j := strings.IndexByte(tmpl[i:], '}') + i
		b.WriteString(tmpl[:i])
		if key := tmpl[i+1 : j]; key == "n" {
			fmt.Fprint(&b, 2+rng.IntN(998))
		} else {
			b.WriteString(pick(rng, slots[key]))
		}
		tmpl = tmpl[j+1:]
	}
}

// contextFacts are the attributes a passage states, with their values.
func contextFacts() (attrs []string, values map[string][]string) {
	attrs = []string{"color", "owner", "age", "origin", "weight"}
	values = map[string][]string{
		"color":  {"red", "blue", "green", "amber", "violet"},
		"owner":  {"Mira", "Tomas", "Ines", "Kofi", "Lena"},
		"age":    {"three years", "ten years", "a century", "six months"},
		"origin": {"Norway", "Peru", "Kenya", "Vietnam", "Chile"},
		"weight": {"two kilograms", "a ton", "forty grams", "nine pounds"},
	}
	return attrs, values
}

func contextEntities() []string {
	return []string{"the lantern", "the kettle", "the violin", "the bicycle", "the carpet", "the clock",
		"the statue", "the boat", "the mirror", "the drum", "the map", "the compass"}
}

// genContext asks whether a passage answers a question. A passage states
// three facts "The ATTR of ENTITY is VALUE." about distinct entities; the
// question is "What is the ATTR of ENTITY?". It is answerable when the
// passage states exactly that attribute of that entity. Unanswerable
// questions ask, two times in three, about an entity the passage never
// mentions, and otherwise about an attribute it does not give for a
// mentioned entity.
func genContext(ctx context.Context, _ SuiteSources, perClass int, seed uint64) (*TextSet, error) {
	attrs, values := contextFacts()
	ents := contextEntities()
	return balanced(ctx, SuiteContext, contextClasses(), perClass, NewRand(seed), func(rng *rand.Rand) (string, int) {
		order := rng.Perm(len(ents))
		type fact struct{ ent, attr string }
		var facts []fact
		var b strings.Builder
		b.WriteString("Passage:")
		for _, e := range order[:3] {
			f := fact{ents[e], pick(rng, attrs)}
			facts = append(facts, f)
			fmt.Fprintf(&b, " The %s of %s is %s.", f.attr, f.ent, pick(rng, values[f.attr]))
		}
		var q fact
		class := 1
		switch r := rng.IntN(6); {
		case r < 3: // a stated fact
			q, class = facts[rng.IntN(len(facts))], 0
		case r < 5: // an entity never mentioned
			q = fact{ents[order[3+rng.IntN(len(ents)-3)]], pick(rng, attrs)}
		default: // a mentioned entity, an attribute the passage does not give
			f := facts[rng.IntN(len(facts))]
			q = f
			for q.attr == f.attr {
				q.attr = pick(rng, attrs)
			}
		}
		fmt.Fprintf(&b, " Question: What is the %s of %s?", q.attr, q.ent)
		return b.String(), class
	})
}
