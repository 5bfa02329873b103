{{/*
Names and labels for every object of the chart. Components are gateway, worker and sandbox.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "parkstream.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The prefix of every object name: fullnameOverride, else <release>-<chart> (just <release> when it
already contains the chart name). Truncated so "<prefix>-dashboard-<name>" stays a valid name.
*/}}
{{- define "parkstream.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The name of one component's objects: <fullname>-<component>. Call with (dict "root" $ "component" "worker"). */}}
{{- define "parkstream.componentName" -}}
{{- printf "%s-%s" (include "parkstream.fullname" .root) .component -}}
{{- end -}}

{{/* chart-version, as in the helm.sh/chart label. */}}
{{- define "parkstream.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select this release's pods; never change them after an install. */}}
{{- define "parkstream.selectorLabels" -}}
app.kubernetes.io/name: {{ include "parkstream.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "parkstream.labels" -}}
helm.sh/chart: {{ include "parkstream.chart" . }}
{{ include "parkstream.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/part-of: parkstream
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The NetworkPolicy peer that is Prometheus (networkPolicy.prometheus), as one from entry. */}}
{{- define "parkstream.prometheusPeer" -}}
- namespaceSelector:
    {{- toYaml .namespaceSelector | nindent 4 }}
  podSelector:
    {{- toYaml (.podSelector | default (dict "matchLabels" (dict "app.kubernetes.io/name" "prometheus"))) | nindent 4 }}
{{- end -}}

{{/* The label of Services the ServiceMonitor scrapes (the gateway's vendor Service has none). */}}
{{- define "parkstream.metricsLabel" -}}
parkstream.io/metrics: "true"
{{- end -}}

{{/* Selector labels of one component. Call with (dict "root" $ "component" "worker"). */}}
{{- define "parkstream.componentSelectorLabels" -}}
{{ include "parkstream.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* All labels of one component's objects. Call with (dict "root" $ "component" "worker"). */}}
{{- define "parkstream.componentLabels" -}}
{{ include "parkstream.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* image reference: repository@digest, else repository:tag (tag defaults to appVersion). */}}
{{- define "parkstream.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* The ServiceAccount the pods run as. */}}
{{- define "parkstream.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "parkstream.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the tokens: secrets.existingSecret, or the one this chart creates. */}}
{{- define "parkstream.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else -}}
{{- printf "%s-secrets" (include "parkstream.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The Controller the worker calls: controller.url, else the sandbox Service when it is enabled. */}}
{{- define "parkstream.controllerUrl" -}}
{{- if .Values.controller.url -}}
{{- .Values.controller.url -}}
{{- else if .Values.sandbox.enabled -}}
{{- printf "http://%s:%v" (include "parkstream.componentName" (dict "root" . "component" "sandbox")) .Values.sandbox.service.port -}}
{{- end -}}
{{- end -}}

{{/*
Values the schema cannot check alone; every problem is named in one failure so an operator
fixes them all at once.
*/}}
{{- define "parkstream.validateValues" -}}
{{- $problems := list -}}
{{- if not .Values.kafka.bootstrapServers -}}
{{- $problems = append $problems "kafka.bootstrapServers is required: the Kafka brokers, host:port[,host:port]" -}}
{{- end -}}
{{- if not (include "parkstream.controllerUrl" .) -}}
{{- $problems = append $problems "controller.url is required: the OPS-COM Controller's base URL (or set sandbox.enabled=true for a demo)" -}}
{{- end -}}
{{- if eq (int .Values.gateway.port) (int .Values.gateway.opsPort) -}}
{{- $problems = append $problems "gateway.opsPort must differ from gateway.port: metrics and readiness are never on the vendors' port" -}}
{{- end -}}
{{- if not .Values.secrets.existingSecret -}}
{{- if not .Values.secrets.controllerApiToken -}}
{{- $problems = append $problems "secrets.controllerApiToken (or secrets.existingSecret) is required: the worker calls the Controller with parkstream's own API token" -}}
{{- end -}}
{{- if not .Values.secrets.referenceSecret -}}
{{- $problems = append $problems "secrets.referenceSecret (or secrets.existingSecret) is required: at least 16 characters, the same for every gateway, kept for good" -}}
{{- end -}}
{{- end -}}
{{- if $problems -}}
{{- fail (printf "\n\nparkstream: values to set:\n  - %s\n" (join "\n  - " $problems)) -}}
{{- end -}}
{{- end -}}

{{/* Pod-level settings shared by every component. Call with (dict "root" $ "values" .Values.worker). */}}
{{- define "parkstream.podSpecCommon" -}}
serviceAccountName: {{ include "parkstream.serviceAccountName" .root }}
automountServiceAccountToken: {{ .root.Values.serviceAccount.automount }}
{{- /* Service links would add <SERVICE>_PORT=tcp://... variables: with a release named
parkstream they are PARKSTREAM_GATEWAY_PORT and friends, parkstream's own settings. */}}
enableServiceLinks: false
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- tpl (toYaml .) $.root | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Annotations that roll the pods when their configuration changes. */}}
{{- define "parkstream.podAnnotations" -}}
checksum/config: {{ include (print .root.Template.BasePath "/configmap.yaml") .root | sha256sum }}
{{- if not .root.Values.secrets.existingSecret }}
checksum/secret: {{ include (print .root.Template.BasePath "/secret.yaml") .root | sha256sum }}
{{- end }}
{{- with .root.Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- with .values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
A token from the Secret as one env entry. Call with
(dict "root" $ "name" "PARKSTREAM_VENDOR_TOKENS" "key" .Values.secrets.keys.vendorTokens).
*/}}
{{- define "parkstream.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "parkstream.secretName" .root }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end -}}

{{/* Where every container finds its non-secret settings, and the extra env it was given. */}}
{{- define "parkstream.envFrom" -}}
envFrom:
  - configMapRef:
      name: {{ include "parkstream.fullname" . }}
{{- end -}}

{{/*
The container's probes on /healthz (liveness, startup) and /readyz (readiness), on the port
named "probePort" of the context (default http; the gateway's is ops).
*/}}
{{- define "parkstream.probes" -}}
{{- $port := default "http" .probePort -}}
{{- with .values.startupProbe }}
startupProbe:
  httpGet:
    path: /healthz
    port: {{ $port }}
  {{- toYaml . | nindent 2 }}
{{- end }}
livenessProbe:
  httpGet:
    path: /healthz
    port: {{ $port }}
  {{- toYaml .values.livenessProbe | nindent 2 }}
readinessProbe:
  httpGet:
    path: /readyz
    port: {{ $port }}
  {{- toYaml .values.readinessProbe | nindent 2 }}
{{- end -}}

{{/* gateway.vendorGrants as PARKSTREAM_VENDOR_GRANTS: name=endpoint+endpoint,... (vendors sorted). */}}
{{- define "parkstream.vendorGrants" -}}
{{- $entries := list -}}
{{- range $vendor, $endpoints := .Values.gateway.vendorGrants -}}
{{- $entries = append $entries (printf "%s=%s" $vendor (join "+" $endpoints)) -}}
{{- end -}}
{{- join "," $entries -}}
{{- end -}}

{{/* Where the zone alias file is mounted (worker and gateway read the same settings). */}}
{{- define "parkstream.zoneAliasesPath" -}}
/etc/parkstream/zones/zones.json
{{- end }}

{{/* The zone alias volume mount and volume, when an alias table is configured. */}}
{{- define "parkstream.zoneAliasesMount" -}}
{{- if .Values.enrichment.zoneAliases }}
- name: zone-aliases
  mountPath: /etc/parkstream/zones
  readOnly: true
{{- end }}
{{- end }}

{{- define "parkstream.zoneAliasesVolume" -}}
{{- if .Values.enrichment.zoneAliases }}
- name: zone-aliases
  configMap:
    name: {{ include "parkstream.fullname" . }}-zones
{{- end }}
{{- end }}
