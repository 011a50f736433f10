// Command kube-validate decodes every object of rendered Kubernetes manifests strictly
// into its typed Go struct (k8s.io/api, Gateway API, Prometheus Operator): an unknown or
// duplicate field, a wrong type or an unknown kind is an error, as the API server's
// strict field validation would report it. Unlike a JSON-schema check it needs no
// network and no cluster.
//
// Usage: kube-validate [-q] [-json out.json] FILE... (or - for stdin)
//
//	kube-validate -values-ref KEY-LIST OURS.yaml...
//	kube-validate -values-keys CHART-values.yaml
//
// With -json it also writes every object, as JSON, to out.json (an array), for later
// assertions on the rendered chart. Besides k8s.io/api, Gateway API and Prometheus Operator
// kinds it knows kind's cluster config (kind.x-k8s.io/v1alpha4 Cluster) and Envoy Gateway's
// EnvoyProxy, the other objects `make kind-up` applies.
//
// With -values-ref it checks values files for a third-party Helm chart instead: every key
// must exist, with the same shape, in the chart's key list; -values-keys derives that list
// from the chart's values.yaml (see values.go; tools/values-keys.sh wraps it).
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

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
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
	kindv1alpha4 "sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"
)

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, autoscalingv2.AddToScheme,
		batchv1.AddToScheme, networkingv1.AddToScheme, policyv1.AddToScheme,
		rbacv1.AddToScheme, gatewayv1.Install, monitoringv1.AddToScheme,
		egv1a1.AddToScheme,
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
	valuesRef := flag.String("values-ref", "", "check values files against this key list of a chart instead")
	valuesKeys := flag.Bool("values-keys", false, "print the key list of a chart's values.yaml instead")
	flag.Parse()
	if *valuesKeys && flag.NArg() == 1 {
		os.Exit(printValuesKeys(flag.Arg(0)))
	}
	if flag.NArg() == 0 || *valuesKeys {
		fmt.Fprintln(os.Stderr, "usage: kube-validate [-q] [-json out.json] FILE... (- for stdin)")
		fmt.Fprintln(os.Stderr, "       kube-validate -values-ref CHART.keys VALUES.yaml...")
		fmt.Fprintln(os.Stderr, "       kube-validate -values-keys CHART/values.yaml")
		os.Exit(2)
	}
	if *valuesRef != "" {
		os.Exit(checkValuesFiles(*valuesRef, flag.Args()))
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
	if head.APIVersion == "kind.x-k8s.io/v1alpha4" && head.Kind == "Cluster" {
		// kind's config is no Kubernetes object (no metadata, no scheme): its own struct.
		return decodeKindCluster(js)
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
		return id, fmt.Errorf("unknown kind %s %s: not in the validator's scheme (k8s.io/api, Gateway API v1, Prometheus Operator v1, Envoy Gateway v1alpha1, kind v1alpha4 Cluster)", head.APIVersion, head.Kind)
	}
	return id, unmarshalStrict(js, obj)
}

// decodeKindCluster decodes kind's cluster config strictly into kind's own v1alpha4 types.
func decodeKindCluster(js []byte) (string, error) {
	var c kindv1alpha4.Cluster
	err := unmarshalStrict(js, &c)
	id := fmt.Sprintf("kind.x-k8s.io/v1alpha4 Cluster/%s", c.Name)
	if err != nil {
		return id, err
	}
	if c.Name == "" {
		return id, errors.New("name is required (kind create cluster --name would differ from kind-down otherwise)")
	}
	for i, n := range c.Nodes {
		switch n.Role {
		case kindv1alpha4.ControlPlaneRole, kindv1alpha4.WorkerRole:
		default:
			return id, fmt.Errorf("nodes[%d].role %q: expected control-plane or worker", i, n.Role)
		}
		for j, m := range n.ExtraPortMappings {
			if m.ContainerPort <= 0 || m.HostPort < 0 || m.ContainerPort > 65535 || m.HostPort > 65535 {
				return id, fmt.Errorf("nodes[%d].extraPortMappings[%d]: port out of range", i, j)
			}
		}
	}
	return id, nil
}

// unmarshalStrict decodes case-sensitively, rejecting unknown and duplicate fields.
func unmarshalStrict(js []byte, obj any) error {
	strictErrs, err := kjson.UnmarshalStrict(js, obj)
	if err != nil {
		return err
	}
	if len(strictErrs) > 0 {
		msgs := make([]string, len(strictErrs))
		for i, e := range strictErrs {
			msgs[i] = e.Error()
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return nil
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
