package main

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ServiceMonitor (monitoring.coreos.com/v1, the Prometheus operator's CRD): the fields the chart writes, decoded as
// strictly as the built-in kinds. A subset of the CRD's schema, kept here rather than importing the operator.
type ServiceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ServiceMonitorSpec `json:"spec"`
}

type ServiceMonitorSpec struct {
	Selector          metav1.LabelSelector `json:"selector"`
	NamespaceSelector *struct {
		Any        bool     `json:"any,omitempty"`
		MatchNames []string `json:"matchNames,omitempty"`
	} `json:"namespaceSelector,omitempty"`
	Endpoints []struct {
		Port          string `json:"port,omitempty"`
		Path          string `json:"path,omitempty"`
		Interval      string `json:"interval,omitempty"`
		ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
		Scheme        string `json:"scheme,omitempty"`
	} `json:"endpoints"`
}

func (s *ServiceMonitor) DeepCopyObject() runtime.Object {
	c := *s
	s.ObjectMeta.DeepCopyInto(&c.ObjectMeta)
	return &c
}

func addServiceMonitor(s *runtime.Scheme) error {
	gv := schema.GroupVersion{Group: "monitoring.coreos.com", Version: "v1"}
	s.AddKnownTypes(gv, &ServiceMonitor{})
	metav1.AddToGroupVersion(s, gv)
	return nil
}
