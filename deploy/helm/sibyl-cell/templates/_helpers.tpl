{{/* Names and labels shared by the cell's objects. */}}
{{- define "sibyl-cell.cell" -}}
{{- required "cell is required (the cell's name, a DNS label)" .Values.cell -}}
{{- end -}}

{{- define "sibyl-cell.name" -}}
{{- printf "sibyl-%s" (include "sibyl-cell.cell" .) | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{/* podLabels: the labels of every object but the selector's (pod templates add the selector's). */}}
{{- define "sibyl-cell.podLabels" -}}
app.kubernetes.io/part-of: sibyl
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "sibyl-cell.labels" -}}
{{ include "sibyl-cell.podLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
sibyl.dev/cell: {{ include "sibyl-cell.cell" . }}
{{- end -}}

{{/* selectorLabels COMPONENT: the labels a component's pods are selected by. */}}
{{- define "sibyl-cell.selector" -}}
app.kubernetes.io/name: {{ printf "sibyl-%s" .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
sibyl.dev/cell: {{ include "sibyl-cell.cell" .root }}
{{- end -}}

{{- define "sibyl-cell.redisUrl" -}}
{{- printf "redis://%s-redis:6379" (include "sibyl-cell.name" .) -}}
{{- end -}}

{{- define "sibyl-cell.kafkaBrokers" -}}
{{- if eq .Values.kafka.mode "inChart" -}}
{{- printf "%s-kafka:9092" (include "sibyl-cell.name" .) -}}
{{- else -}}
{{- .Values.kafka.external.brokers -}}
{{- end -}}
{{- end -}}

{{/* The pod's termination grace: preStop sleep + the drain's last resort + 5 s for flushing the log. */}}
{{- define "sibyl-cell.terminationGrace" -}}
{{- $d := .Values.gateway.drain -}}
{{- if ge (int $d.graceMs) (int $d.timeoutMs) -}}
{{- fail "gateway.drain.graceMs must be less than gateway.drain.timeoutMs (SIBYL_DRAIN_GRACE_MS < SIBYL_DRAIN_TIMEOUT_MS)" -}}
{{- end -}}
{{- add (int $d.preStopSeconds) (div (add (int $d.timeoutMs) 999) 1000) 5 -}}
{{- end -}}
