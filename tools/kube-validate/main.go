// Command kube-validate decodes every object of rendered Kubernetes manifests strictly
// into its typed Go struct (k8s.io/api, Gateway API, Prometheus Operator): an unknown or
// duplicate field, a wrong type or an unknown kind is an error, as the API server's
// strict field validation would report it. Unlike a JSON-schema check it needs no
// network and no cluster.
//
// Usage: kube-validate [-json out.json] [-allow-kind group/version/Kind ...] FILE... (or - for stdin)
//
// With -json it also writes every object, as JSON, to out.json (an array), for later
// assertions on the rendered chart.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, autoscalingv2.AddToScheme,
		batchv1.AddToScheme, networkingv1.AddToScheme, policyv1.AddToScheme,
		rbacv1.AddToScheme, gatewayv1.Install, monitoringv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

type source struct {
	name string
	r    io.Reader
}

type result struct {
	docs    int // non-empty documents seen
	errs    []string
	objects []json.RawMessage // every document that parsed as JSON, valid or not
}

func main() {
	jsonOut := flag.String("json", "", "also write all objects as a JSON array to this file")
	quiet := flag.Bool("q", false, "print only errors and the summary")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: kube-validate [-q] [-json out.json] FILE... (- for stdin)")
		os.Exit(2)
	}
	scheme := newScheme()
	var res result
	for _, arg := range flag.Args() {
		var src source
		if arg == "-" {
			src = source{"<stdin>", os.Stdin}
		} else {
			f, err := os.Open(arg)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			defer f.Close()
			src = source{arg, f}
		}
		validate(scheme, src, &res, *quiet)
	}
	if *jsonOut != "" {
		all, _ := json.MarshalIndent(res.objects, "", "  ")
		if err := os.WriteFile(*jsonOut, all, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	for _, e := range res.errs {
		fmt.Println("INVALID", e)
	}
	fmt.Printf("kube-validate: %d objects, %d invalid\n", res.docs, len(res.errs))
	if len(res.errs) > 0 || res.docs == 0 {
		os.Exit(1)
	}
}

// validate splits a multi-document YAML stream and decodes each document strictly.
func validate(scheme *runtime.Scheme, src source, res *result, quiet bool) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(src.r))
	for doc := 1; ; doc++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			res.errs = append(res.errs, fmt.Sprintf("%s: document %d: %v", src.name, doc, err))
			return
		}
		if len(bytes.TrimSpace(stripComments(raw))) == 0 {
			continue // an empty document (a template that rendered nothing)
		}
		res.docs++
		where := fmt.Sprintf("%s: document %d", src.name, doc)
		// YAMLToJSONStrict rejects duplicate keys in the YAML itself.
		js, err := yaml.YAMLToJSONStrict(raw)
		if err != nil {
			res.errs = append(res.errs, fmt.Sprintf("%s: %v", where, err))
			continue
		}
		id, err := decodeStrict(scheme, js)
		if id != "" {
			where = fmt.Sprintf("%s (%s)", where, id)
		}
		if err != nil {
			res.errs = append(res.errs, fmt.Sprintf("%s: %v", where, err))
		} else if !quiet {
			fmt.Println("ok", where)
		}
		res.objects = append(res.objects, json.RawMessage(js))
	}
}

// decodeStrict looks the object's kind up in the scheme and decodes it into the typed
// struct, case-sensitively, rejecting unknown and duplicate fields.
func decodeStrict(scheme *runtime.Scheme, js []byte) (string, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(js, &head); err != nil {
		return "", fmt.Errorf("not an object: %v", err)
	}
	id := fmt.Sprintf("%s %s/%s", head.APIVersion, head.Kind, head.Metadata.Name)
	if head.APIVersion == "" || head.Kind == "" {
		return id, errors.New("apiVersion and kind are required")
	}
	if head.Metadata.Name == "" {
		return id, errors.New("metadata.name is required")
	}
	gv, err := schema.ParseGroupVersion(head.APIVersion)
	if err != nil {
		return id, err
	}
	obj, err := scheme.New(gv.WithKind(head.Kind))
	if err != nil {
		return id, fmt.Errorf("unknown kind %s %s: not in the validator's scheme (k8s.io/api, Gateway API v1, Prometheus Operator v1)", head.APIVersion, head.Kind)
	}
	strictErrs, err := kjson.UnmarshalStrict(js, obj)
	if err != nil {
		return id, err
	}
	if len(strictErrs) > 0 {
		msgs := make([]string, len(strictErrs))
		for i, e := range strictErrs {
			msgs[i] = e.Error()
		}
		return id, errors.New(strings.Join(msgs, "; "))
	}
	return id, nil
}

// stripComments drops YAML comment lines, so that a document holding only "# Source: ..."
// counts as empty.
func stripComments(b []byte) []byte {
	var out bytes.Buffer
	for _, line := range bytes.Split(b, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out.Write(line)
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}
