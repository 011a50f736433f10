package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// checkValuesFiles checks values files written for a third-party Helm chart against that
// chart's own values.yaml (kept in the repository at the pinned chart version): Helm
// accepts any key for a chart without values.schema.json, so a misspelt key
// (`controller.hostPrt`) would be silently ignored at install time. Rules:
//   - every key must exist at the same path in the chart's values.yaml;
//   - below a map that the chart leaves open (empty by default, null, or holding label-like
//     keys with a '/' such as nodeSelector's kubernetes.io/os) any key goes;
//   - a value must have the same shape as the chart's default (map, list, string, number,
//     bool), unless the default is null;
//   - lists are replaced whole by Helm, so their items are not compared.
//
// Returns the exit code: 0 when every file passes.
func checkValuesFiles(refPath string, files []string) int {
	ref, err := readYAMLMap(refPath)
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
			fmt.Printf("ok %s: every key is in %s\n", f, refPath)
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

func compareValues(ref, ours map[string]any, path string, errs *[]string) {
	for k, v := range ours {
		p := k
		if path != "" {
			p = path + "." + k
		}
		def, ok := ref[k]
		if !ok {
			*errs = append(*errs, fmt.Sprintf("unknown key %s (not in the chart's values.yaml)", p))
			continue
		}
		if def == nil {
			continue
		}
		if shape(def) != shape(v) {
			*errs = append(*errs, fmt.Sprintf("%s is a %s, the chart's default is a %s", p, shape(v), shape(def)))
			continue
		}
		if dm, isMap := def.(map[string]any); isMap && !openMap(dm) {
			compareValues(dm, v.(map[string]any), p, errs)
		}
	}
}
