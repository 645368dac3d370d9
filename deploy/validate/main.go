// sibyl-validate decodes every object of rendered Kubernetes manifests strictly against the API types of
// k8s.io/api: an unknown field, a duplicate field or a value of the wrong type fails, as the API server's strict
// field validation would refuse it. It also checks what a chart can get wrong without a schema error: names and
// labels, a Deployment's selector against its pod labels, a Service's and a probe's named ports against the
// containers, and that every object names a kind it knows.
//
//	helm template ... | sibyl-validate            (or: sibyl-validate FILE...)
//
// Exit status 0 when every object is valid, 1 otherwise (each problem on stderr), 2 on a usage error.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

func main() {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		appsv1.AddToScheme, corev1.AddToScheme, policyv1.AddToScheme, autoscalingv2.AddToScheme,
		networkingv1.AddToScheme, addServiceMonitor,
	} {
		if err := add(scheme); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	strict := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme,
		json.SerializerOptions{Yaml: true, Strict: true})

	var inputs []io.Reader
	names := []string{}
	if len(os.Args) == 1 {
		inputs, names = append(inputs, os.Stdin), append(names, "stdin")
	}
	for _, path := range os.Args[1:] {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		defer f.Close()
		inputs, names = append(inputs, f), append(names, path)
	}

	var objects []runtime.Object
	problems := 0
	for i, in := range inputs {
		reader := utilyaml.NewYAMLReader(bufio.NewReader(in))
		for n := 1; ; n++ {
			doc, err := reader.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: document %d: %v\n", names[i], n, err)
				problems++
				break
			}
			if len(bytes.TrimSpace(stripComments(doc))) == 0 {
				continue
			}
			obj, gvk, err := strict.Decode(doc, nil, nil)
			where := fmt.Sprintf("%s: document %d", names[i], n)
			if gvk != nil {
				where = fmt.Sprintf("%s (%s %s)", where, gvk.Kind, nameOf(obj))
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", where, err)
				problems++
				continue
			}
			for _, p := range check(obj) {
				fmt.Fprintf(os.Stderr, "%s: %s\n", where, p)
				problems++
			}
			objects = append(objects, obj)
		}
	}
	for _, p := range checkAcross(objects) {
		fmt.Fprintln(os.Stderr, p)
		problems++
	}
	if problems > 0 {
		fmt.Fprintf(os.Stderr, "%d problem(s) in %d object(s)\n", problems, len(objects))
		os.Exit(1)
	}
	fmt.Printf("%d objects valid\n", len(objects))
}

func stripComments(doc []byte) []byte {
	var out []string
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			out = append(out, line)
		}
	}
	return []byte(strings.Join(out, "\n"))
}
