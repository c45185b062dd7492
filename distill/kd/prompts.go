package kd

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// maxPromptFile bounds a prompt file.
const maxPromptFile = 64 << 20

// ReadPrompts reads a prompt set for a chat teacher: JSON Lines, one object per line with
// "text" (or "prompt") and an optional "label", or plain text, one prompt per line. Blank
// lines are skipped.
func ReadPrompts(path string) ([]Prompt, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("prompts: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > maxPromptFile {
		return nil, fmt.Errorf("prompts %s: %d bytes is over the %d-byte limit", path, fi.Size(), maxPromptFile)
	}
	var out []Prompt
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" {
			continue
		}
		if !strings.HasPrefix(s, "{") {
			out = append(out, Prompt{Text: s})
			continue
		}
		var rec struct {
			Text   string `json:"text"`
			Prompt string `json:"prompt"`
			Label  string `json:"label"`
		}
		if err := json.Unmarshal([]byte(s), &rec); err != nil {
			return nil, fmt.Errorf("prompts %s:%d: %w", path, line, err)
		}
		if rec.Text == "" {
			rec.Text = rec.Prompt
		}
		if strings.TrimSpace(rec.Text) == "" {
			return nil, fmt.Errorf(`prompts %s:%d: no "text"`, path, line)
		}
		out = append(out, Prompt{Text: rec.Text, Label: rec.Label})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("prompts %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("prompts %s: no prompts", path)
	}
	return out, nil
}
