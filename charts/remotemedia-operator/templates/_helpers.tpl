{{- define "remotemedia-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "remotemedia-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "remotemedia-operator.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "remotemedia-operator.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "remotemedia-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "remotemedia-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "remotemedia-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "remotemedia-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "remotemedia-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "remotemedia-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "remotemedia-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "remotemedia-operator.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{- /* The rules the controller needs on Pipelines and their children; see README. */}}
{{- define "remotemedia-operator.pipelineRules" -}}
- apiGroups: [remotemedia.dev]
  resources: [pipelines]
  verbs: [get, list, watch]
- apiGroups: [remotemedia.dev]
  resources: [pipelines/status]
  verbs: [patch]
# The autoscaler sets replicas as an HPA does.
- apiGroups: [remotemedia.dev]
  resources: [pipelines/scale]
  verbs: [get, patch]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, create, patch, delete]
# get/create/delete: catalog probe pods; list/watch/patch: worker pods' session counts and
# their pod-deletion-cost (the autoscaler).
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch]
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [list]
- apiGroups: [""]
  resources: [services]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
# Create only: the WebRTC replicas' key Secret of each Pipeline, made once; the operator reads
# no Secret.
- apiGroups: [""]
  resources: [secrets]
  verbs: [create]
{{- end }}
