{{- define "sibyl-tower.labels" -}}
app.kubernetes.io/part-of: sibyl
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
{{- define "sibyl-tower.selector" -}}
app.kubernetes.io/name: sibyl-tower
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
