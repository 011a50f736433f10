package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Values files written for a third-party Helm chart are checked against a key list: the
// facts of that chart's values.yaml at the pinned version (which key paths exist, and the
// shape of each default), derived by `kube-validate -values-keys` (tools/values-keys.sh)
// and kept in the repository instead of the chart's own text. Helm accepts any key for a
// chart without values.schema.json, so a misspelt key (`controller.hostPrt`) would be
// silently ignored at install time. Rules:
//   - every key must exist at the same path in the chart's values;
//   - below a map that the chart leaves open (empty by default, or holding label-like keys
//     with a '/' such as nodeSelector's kubernetes.io/os) any key goes;
//   - a value must have the same shape as the chart's default (map, list, string, number,
//     bool), unless the default is null;
//   - lists are replaced whole by Helm, so their items are not compared.
//
// Key list format: comment lines start with '#'; every other line is `<path> <shape>`.
// A path joins the keys with '.'; a key holding '.', '"', a space or nothing is written as
// a Go-quoted string. Shapes: map (its keys follow on their own lines), open (a map that
// takes any key), list, string, number, bool, any (the default is null).

const (
	shapeMap  = "map"
	shapeOpen = "open"
	shapeAny  = "any"
)

var keyListShapes = map[string]bool{
	shapeMap: true, shapeOpen: true, shapeAny: true, "list": true, "string": true, "number": true, "bool": true,
}

// printValuesKeys prints the key list of a chart's values.yaml. Returns the exit code.
func printValuesKeys(valuesPath string) int {
	values, err := readYAMLMap(valuesPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	w := bufio.NewWriter(os.Stdout)
	writeKeys(w, values, "")
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return 0
}

func writeKeys(w *bufio.Writer, m map[string]any, prefix string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := joinKey(prefix, k)
		s := defaultShape(m[k])
		fmt.Fprintf(w, "%s %s\n", p, s)
		if s == shapeMap {
			writeKeys(w, m[k].(map[string]any), p)
		}
	}
}

// defaultShape is the shape word of a chart default in a key list.
func defaultShape(v any) string {
	if m, ok := v.(map[string]any); ok && openMap(m) {
		return shapeOpen
	}
	if v == nil {
		return shapeAny
	}
	return shape(v)
}

func joinKey(prefix, key string) string {
	if key == "" || strings.ContainsAny(key, ". \t\"") {
		key = strconv.Quote(key)
	}
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// readKeyList reads a key list into path -> shape.
func readKeyList(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	keys := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i <= 0 || !keyListShapes[line[i+1:]] {
			return nil, fmt.Errorf("%s:%d: expected `<key path> <shape>` (shape: map, open, list, string, number, bool or any), got %q", path, n, line)
		}
		keys[strings.TrimSpace(line[:i])] = line[i+1:]
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no keys: not a key list (tools/values-keys.sh writes them)", path)
	}
	return keys, nil
}

// checkValuesFiles checks values files against a chart's key list. Returns the exit code:
// 0 when every file passes.
func checkValuesFiles(keyListPath string, files []string) int {
	ref, err := readKeyList(keyListPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	bad := 0
	for _, f := range files {
		ours, err := readYAMLMap(f)
		if err != nil {
			fmt.Println("INVALID", err)
			bad++
			continue
		}
		var errs []string
		compareValues(ref, ours, "", &errs)
		sort.Strings(errs)
		for _, e := range errs {
			fmt.Printf("INVALID %s: %s\n", f, e)
		}
		if len(errs) == 0 {
			fmt.Printf("ok %s: every key is in %s\n", f, keyListPath)
		} else {
			bad++
		}
	}
	fmt.Printf("kube-validate: %d values files, %d invalid\n", len(files), bad)
	if bad > 0 {
		return 1
	}
	return 0
}

func readYAMLMap(path string) (map[string]any, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	js, err := yaml.YAMLToJSONStrict(raw) // rejects duplicate keys
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(js, &m); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

func openMap(m map[string]any) bool {
	if len(m) == 0 {
		return true
	}
	for k := range m {
		if strings.Contains(k, "/") {
			return true
		}
	}
	return false
}

func shape(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "map"
	case []any:
		return "list"
	case string:
		return "string"
	case bool:
		return "bool"
	case float64, int64, int:
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

func compareValues(ref map[string]string, ours map[string]any, prefix string, errs *[]string) {
	for k, v := range ours {
		p := joinKey(prefix, k)
		want, ok := ref[p]
		if !ok {
			*errs = append(*errs, fmt.Sprintf("unknown key %s (not in the chart's key list)", p))
			continue
		}
		if want == shapeAny {
			continue
		}
		got := shape(v)
		if want == shapeOpen {
			want = shapeMap
		}
		if got != want {
			*errs = append(*errs, fmt.Sprintf("%s is a %s, the chart's default is a %s", p, got, want))
			continue
		}
		if ref[p] == shapeMap {
			compareValues(ref, v.(map[string]any), p, errs)
		}
	}
}
