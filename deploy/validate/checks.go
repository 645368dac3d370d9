package main

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

func nameOf(obj runtime.Object) string {
	if m, ok := obj.(metav1.Object); ok {
		return m.GetName()
	}
	return "?"
}

// check returns the problems of one object.
func check(obj runtime.Object) []string {
	var p []string
	m, ok := obj.(metav1.Object)
	if !ok {
		return []string{"not an object with metadata"}
	}
	for _, e := range validation.IsDNS1123Subdomain(m.GetName()) {
		p = append(p, "metadata.name: "+e)
	}
	p = append(p, checkLabels("metadata.labels", m.GetLabels())...)
	switch o := obj.(type) {
	case *appsv1.Deployment:
		if o.Spec.Selector == nil {
			return append(p, "spec.selector: required")
		}
		sel, err := metav1.LabelSelectorAsSelector(o.Spec.Selector)
		if err != nil {
			p = append(p, "spec.selector: "+err.Error())
		} else if sel.Empty() || !sel.Matches(labels.Set(o.Spec.Template.Labels)) {
			p = append(p, "spec.selector does not match spec.template.metadata.labels")
		}
		p = append(p, checkLabels("spec.template.metadata.labels", o.Spec.Template.Labels)...)
		p = append(p, checkPod(o.Spec.Template.Spec)...)
	case *corev1.Service:
		for _, port := range o.Spec.Ports {
			if port.Name != "" {
				for _, e := range validation.IsDNS1123Label(port.Name) {
					p = append(p, fmt.Sprintf("spec.ports[%s].name: %s", port.Name, e))
				}
			}
		}
	case *policyv1.PodDisruptionBudget:
		if (o.Spec.MinAvailable == nil) == (o.Spec.MaxUnavailable == nil) {
			p = append(p, "spec: exactly one of minAvailable and maxUnavailable")
		}
	case *autoscalingv2.HorizontalPodAutoscaler:
		if o.Spec.MinReplicas != nil && *o.Spec.MinReplicas > o.Spec.MaxReplicas {
			p = append(p, "spec.minReplicas > spec.maxReplicas")
		}
	}
	return p
}

func checkLabels(where string, l map[string]string) []string {
	var p []string
	for k, v := range l {
		for _, e := range validation.IsQualifiedName(k) {
			p = append(p, fmt.Sprintf("%s[%s]: %s", where, k, e))
		}
		for _, e := range validation.IsValidLabelValue(v) {
			p = append(p, fmt.Sprintf("%s[%s]=%q: %s", where, k, v, e))
		}
	}
	return p
}

// checkPod: named ports used by probes exist; environment variables are set once; mounts name volumes.
func checkPod(spec corev1.PodSpec) []string {
	var p []string
	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = true
	}
	for _, c := range spec.Containers {
		ports := map[string]bool{}
		for _, port := range c.Ports {
			if port.Name != "" {
				ports[port.Name] = true
			}
			if port.HostPort != 0 && port.HostIP == "" {
				p = append(p, fmt.Sprintf("container %s: hostPort %d without hostIP", c.Name, port.HostPort))
			}
		}
		for what, probe := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
			if probe == nil {
				continue
			}
			var port *intstr.IntOrString
			if probe.HTTPGet != nil {
				port = &probe.HTTPGet.Port
			} else if probe.TCPSocket != nil {
				port = &probe.TCPSocket.Port
			}
			if port != nil && port.Type == intstr.String && !ports[port.StrVal] {
				p = append(p, fmt.Sprintf("container %s: %s probe names port %q, which it does not declare", c.Name, what, port.StrVal))
			}
		}
		seen := map[string]bool{}
		for _, e := range c.Env {
			if seen[e.Name] {
				p = append(p, fmt.Sprintf("container %s: env %s set twice", c.Name, e.Name))
			}
			seen[e.Name] = true
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				p = append(p, fmt.Sprintf("container %s: mount of unknown volume %q", c.Name, m.Name))
			}
		}
	}
	return p
}

// checkAcross: a Service selects some Deployment's pods and its named target ports exist there; a PDB, HPA and
// NetworkPolicy select or name something that is rendered.
func checkAcross(objects []runtime.Object) []string {
	var p []string
	var deployments []*appsv1.Deployment
	for _, o := range objects {
		if d, ok := o.(*appsv1.Deployment); ok {
			deployments = append(deployments, d)
		}
	}
	selects := func(sel labels.Selector) []*appsv1.Deployment {
		var out []*appsv1.Deployment
		for _, d := range deployments {
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				out = append(out, d)
			}
		}
		return out
	}
	for _, o := range objects {
		switch x := o.(type) {
		case *corev1.Service:
			matched := selects(labels.SelectorFromSet(x.Spec.Selector))
			if len(x.Spec.Selector) == 0 || len(matched) == 0 {
				p = append(p, fmt.Sprintf("Service %s selects no rendered Deployment's pods", x.Name))
				continue
			}
			for _, port := range x.Spec.Ports {
				if port.TargetPort.Type != intstr.String {
					continue
				}
				for _, d := range matched {
					if !declaresPort(d.Spec.Template.Spec, port.TargetPort.StrVal) {
						p = append(p, fmt.Sprintf("Service %s: targetPort %q not declared by Deployment %s", x.Name, port.TargetPort.StrVal, d.Name))
					}
				}
			}
		case *policyv1.PodDisruptionBudget:
			sel, err := metav1.LabelSelectorAsSelector(x.Spec.Selector)
			if err != nil || len(selects(sel)) == 0 {
				p = append(p, fmt.Sprintf("PodDisruptionBudget %s selects no rendered Deployment's pods", x.Name))
			}
		case *networkingv1.NetworkPolicy:
			sel, err := metav1.LabelSelectorAsSelector(&x.Spec.PodSelector)
			if err != nil || len(selects(sel)) == 0 {
				p = append(p, fmt.Sprintf("NetworkPolicy %s selects no rendered Deployment's pods", x.Name))
			}
		case *autoscalingv2.HorizontalPodAutoscaler:
			found := false
			for _, d := range deployments {
				found = found || (x.Spec.ScaleTargetRef.Kind == "Deployment" && x.Spec.ScaleTargetRef.Name == d.Name)
			}
			if !found {
				p = append(p, fmt.Sprintf("HorizontalPodAutoscaler %s scales no rendered Deployment", x.Name))
			} else {
				for _, d := range deployments {
					if d.Name == x.Spec.ScaleTargetRef.Name && d.Spec.Replicas != nil {
						p = append(p, fmt.Sprintf("Deployment %s sets replicas while HorizontalPodAutoscaler %s scales it", d.Name, x.Name))
					}
				}
			}
		}
	}
	return p
}

func declaresPort(spec corev1.PodSpec, name string) bool {
	for _, c := range spec.Containers {
		for _, port := range c.Ports {
			if port.Name == name {
				return true
			}
		}
	}
	return false
}
