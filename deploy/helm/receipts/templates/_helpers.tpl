{{/* Names ------------------------------------------------------------------------------------ */}}

{{- define "receipts.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "receipts.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* <fullname>-<suffix>, within 63 characters. Arguments: (list $ "suffix"). */}}
{{- define "receipts.objectName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "receipts.fullname" $root | trunc (sub 62 (len (index . 1)) | int)) (index . 1) | trimSuffix "-" -}}
{{- end -}}

{{- define "receipts.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "receipts.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "receipts.secretName" -}}
{{- default (include "receipts.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* Labels ----------------------------------------------------------------------------------- */}}

{{- define "receipts.selectorLabels" -}}
app.kubernetes.io/name: {{ include "receipts.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "receipts.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "receipts.selectorLabels" . }}
app.kubernetes.io/version: {{ include "receipts.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: receipts
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Arguments: (list $ "component-name"). */}}
{{- define "receipts.componentSelectorLabels" -}}
{{ include "receipts.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "receipts.componentLabels" -}}
{{ include "receipts.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* Image ------------------------------------------------------------------------------------ */}}

{{- define "receipts.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag -}}
{{- end -}}

{{- define "receipts.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (include "receipts.imageTag" .) -}}
{{- end -}}
{{- end -}}

{{/*
The services. key: values key; binary: the image's command; port: what its probes and metrics
listen on; consumer: has an admin listener (0.0.0.0:9090); store: reads [store]; lag: the KEDA
triggers (consumer group, input topic; an empty topic means every topic of the group; retry
tiers are left out on purpose: their messages wait by design).
*/}}
{{- define "receipts.components" -}}
ingestGateway:
  binary: ingest-gateway
  port: 8080
  portName: http
  consumer: false
  store: true
validator:
  binary: validator
  port: 9090
  portName: admin
  consumer: true
  store: false
  lag:
    - {group: validator, topic: receipts.submitted}
taxRegistrar:
  binary: tax-registrar
  registry: tax
  port: 9090
  portName: admin
  consumer: true
  store: false
  lag:
    - {group: tax-registrar, topic: receipts.validated}
logisticsRegistrar:
  binary: logistics-registrar
  registry: logistics
  port: 9090
  portName: admin
  consumer: true
  store: false
  lag:
    - {group: logistics-registrar, topic: receipts.validated}
statusProjector:
  binary: status-projector
  port: 9090
  portName: admin
  consumer: true
  store: true
  lag:
    - {group: status-projector, topic: ""}
webhookDispatcher:
  binary: webhook-dispatcher
  port: 9090
  portName: admin
  consumer: true
  store: true
  lag:
    - {group: webhook-dispatcher-fanout, topic: receipts.status-changed}
    - {group: webhook-dispatcher, topic: receipts.webhook-deliveries}
{{- end -}}

{{/* A component's values: defaults overridden by its own block. Arguments: (list $ "key"). */}}
{{- define "receipts.componentValues" -}}
{{- $root := index . 0 -}}
{{- $own := index $root.Values (index . 1) -}}
{{- toYaml (mergeOverwrite (deepCopy $root.Values.defaults) (deepCopy $own)) -}}
{{- end -}}

{{/* Checks that fail the render with a message saying what to change. */}}
{{- define "receipts.validate" -}}
{{- $components := include "receipts.components" . | fromYaml -}}
{{- range $key := keys $components | sortAlpha -}}
{{- $values := index $.Values $key -}}
{{- if and $values.autoscaling.enabled (and (hasKey $values "keda") $values.keda.enabled) -}}
{{- fail (printf "%s: autoscaling.enabled (HPA on CPU) and keda.enabled (KEDA on consumer lag) are mutually exclusive: both would drive the same Deployment's replicas. Enable one of them." $key) -}}
{{- end -}}
{{- end -}}
{{- if not .Values.kafka.bootstrapServers -}}
{{- fail "kafka.bootstrapServers is required (host1:9092,host2:9092)" -}}
{{- end -}}
{{- if not .Values.schemaRegistry.url -}}
{{- fail "schemaRegistry.url is required" -}}
{{- end -}}
{{- if not .Values.store.url -}}
{{- fail "store.url is required (scylla://host1:9042,host2:9042/<keyspace>?dc=<dc>)" -}}
{{- end -}}
{{- range $name := list "tax" "logistics" -}}
{{- if and (not (index $.Values.registries $name).baseUrl) (not $.Values.mockRegistries.enabled) -}}
{{- fail (printf "registries.%s.baseUrl is required (or mockRegistries.enabled for a test installation)" $name) -}}
{{- end -}}
{{- end -}}
{{- if and (not .Values.secrets.existingSecret) (not .Values.secrets.values.gatewayCursorKey) -}}
{{- fail "the gateway's cursor key is required: set secrets.values.gatewayCursorKey (e.g. openssl rand -hex 32) or secrets.existingSecret with the key gateway-cursor-key" -}}
{{- end -}}
{{- if and (hasPrefix "sasl_" .Values.kafka.securityProtocol) (not .Values.kafka.sasl.username) -}}
{{- fail "kafka.sasl.username is required with kafka.securityProtocol sasl_plaintext or sasl_ssl" -}}
{{- end -}}
{{- end -}}

{{- define "receipts.kafkaTls" -}}
{{- if has .Values.kafka.securityProtocol (list "ssl" "sasl_ssl") }}true{{ end -}}
{{- end -}}

{{- define "receipts.kafkaSasl" -}}
{{- if hasPrefix "sasl_" .Values.kafka.securityProtocol }}true{{ end -}}
{{- end -}}

{{/* The registry's base URL: the configured one, or the mock's. Arguments: (list $ "tax"). */}}
{{- define "receipts.registryUrl" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $registry := index $root.Values.registries $name -}}
{{- if $registry.baseUrl -}}
{{- $registry.baseUrl -}}
{{- else -}}
{{- printf "http://%s:%d/" (include "receipts.objectName" (list $root "mock-registries")) (ternary 8091 8092 (eq $name "tax")) -}}
{{- end -}}
{{- end -}}

{{- define "receipts.publicUrl" -}}
{{- if .Values.gateway.publicUrl -}}
{{- .Values.gateway.publicUrl -}}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts -}}
{{- printf "%s://%s/" (ternary "https" "http" (gt (len .Values.ingress.tls) 0)) (index .Values.ingress.hosts 0).host -}}
{{- else -}}
{{- printf "http://%s.%s.svc:%d/" (include "receipts.objectName" (list . "ingest-gateway")) .Release.Namespace (int .Values.ingestGateway.service.port) -}}
{{- end -}}
{{- end -}}

{{/* Security contexts ------------------------------------------------------------------------- */}}

{{- define "receipts.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "receipts.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Environment and volumes ------------------------------------------------------------------- */}}

{{/* Arguments: (list secretName VARIABLE key [optional]). */}}
{{- define "receipts.secretEnv" -}}
- name: {{ index . 1 }}
  valueFrom:
    secretKeyRef:
      name: {{ index . 0 }}
      key: {{ index . 2 }}
      {{- if gt (len .) 3 }}
      optional: {{ index . 3 }}
      {{- end }}
{{- end -}}

{{/*
Variables every binary talking to Kafka and the registry gets. Arguments: (list $ store
[secretName]).
*/}}
{{- define "receipts.commonEnv" -}}
{{- $root := index . 0 -}}
{{- $store := index . 1 -}}
{{- $secret := include "receipts.secretName" $root -}}
{{- if gt (len .) 2 }}{{ $secret = index . 2 }}{{ end -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: OTEL_RESOURCE_ATTRIBUTES
  value: "k8s.namespace.name=$(POD_NAMESPACE),k8s.pod.name=$(POD_NAME),service.instance.id=$(POD_NAME)"
{{- if include "receipts.kafkaSasl" $root }}
- name: RECEIPTS_KAFKA__SASL__USERNAME
  value: {{ $root.Values.kafka.sasl.username | quote }}
{{ include "receipts.secretEnv" (list $secret "RECEIPTS_KAFKA__SASL__PASSWORD" "kafka-sasl-password") }}
{{- end }}
{{- if $root.Values.schemaRegistry.username }}
{{ include "receipts.secretEnv" (list $secret "RECEIPTS_SCHEMA_REGISTRY__PASSWORD" "schema-registry-password") }}
{{- end }}
{{- if and $store $root.Values.store.scylla.username }}
{{ include "receipts.secretEnv" (list $secret "RECEIPTS_STORE__SCYLLA__PASSWORD" "scylla-password") }}
{{- end }}
{{- end -}}

{{/* CA files mounted under /etc/receipts/tls. Arguments: (list $ store). */}}
{{- define "receipts.tlsVolumes" -}}
{{- $root := index . 0 -}}
{{- $store := index . 1 -}}
{{- if and (include "receipts.kafkaTls" $root) $root.Values.kafka.tls.caSecret.name }}
- name: kafka-ca
  secret:
    secretName: {{ $root.Values.kafka.tls.caSecret.name }}
    items:
      - key: {{ $root.Values.kafka.tls.caSecret.key }}
        path: kafka-ca.crt
{{- end }}
{{- if and $store $root.Values.store.scylla.tls $root.Values.store.scylla.caSecret.name }}
- name: scylla-ca
  secret:
    secretName: {{ $root.Values.store.scylla.caSecret.name }}
    items:
      - key: {{ $root.Values.store.scylla.caSecret.key }}
        path: scylla-ca.crt
{{- end }}
{{- end -}}

{{- define "receipts.tlsVolumeMounts" -}}
{{- $root := index . 0 -}}
{{- $store := index . 1 -}}
{{- if and (include "receipts.kafkaTls" $root) $root.Values.kafka.tls.caSecret.name }}
- name: kafka-ca
  mountPath: /etc/receipts/tls/kafka
  readOnly: true
{{- end }}
{{- if and $store $root.Values.store.scylla.tls $root.Values.store.scylla.caSecret.name }}
- name: scylla-ca
  mountPath: /etc/receipts/tls/scylla
  readOnly: true
{{- end }}
{{- end -}}

{{/*
The pod spec of the setup Job and of CLI pods (NOTES.txt). Arguments: (list $ command hook).
The hook runs before the release's own ConfigMap, Secret and ServiceAccount exist on a first
install, so it uses copies that are hooks themselves (named <fullname>-setup).
*/}}
{{- define "receipts.cliPodSpec" -}}
{{- $root := index . 0 -}}
{{- $hook := index . 2 -}}
{{- $setupName := include "receipts.objectName" (list $root "setup") -}}
{{- $secret := include "receipts.secretName" $root -}}
{{- if and $hook (not $root.Values.secrets.existingSecret) }}{{ $secret = $setupName }}{{ end -}}
serviceAccountName: {{ ternary $setupName (include "receipts.serviceAccountName" $root) $hook }}
automountServiceAccountToken: false
restartPolicy: Never
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- include "receipts.podSecurityContext" $root | nindent 2 }}
containers:
  - name: receipts
    image: {{ include "receipts.image" $root }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    command:
      {{- toYaml (index . 1) | nindent 6 }}
    env:
      - name: RECEIPTS_CONFIG
        value: /etc/receipts/config.toml
      {{- include "receipts.commonEnv" (list $root true $secret) | nindent 6 }}
    securityContext:
      {{- include "receipts.containerSecurityContext" $root | nindent 6 }}
    resources:
      {{- toYaml $root.Values.setup.resources | nindent 6 }}
    volumeMounts:
      - name: config
        mountPath: /etc/receipts/config.toml
        subPath: config.toml
        readOnly: true
      - name: tmp
        mountPath: /tmp
      {{- with include "receipts.tlsVolumeMounts" (list $root true) }}{{ . | trim | nindent 6 }}{{ end }}
volumes:
  - name: config
    configMap:
      name: {{ ternary $setupName (include "receipts.objectName" (list $root "config")) $hook }}
      items:
        - key: setup.toml
          path: config.toml
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
  {{- with include "receipts.tlsVolumes" (list $root true) }}{{ . | trim | nindent 2 }}{{ end }}
{{- end -}}
