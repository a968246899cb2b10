{{/*
TOML configuration files, one per binary: each binary refuses a section it does not read
(docs/configuration.md), so each gets only its own. Strings go through toJson (a JSON string is
a TOML basic string). Secrets are never here: they come from the Secret as variables.
*/}}

{{- define "receipts.toml.kafka" -}}
[kafka]
bootstrap_servers = {{ .Values.kafka.bootstrapServers | toJson }}
topic_prefix = {{ .Values.kafka.topicPrefix | toJson }}
partitions = {{ int .Values.kafka.partitions }}
replication_factor = {{ int .Values.kafka.replicationFactor }}
produce_timeout = {{ .Values.kafka.produceTimeout | toJson }}
session_timeout = {{ .Values.kafka.sessionTimeout | toJson }}
drain_timeout = {{ .Values.kafka.drainTimeout | toJson }}
fetch_wait = {{ .Values.kafka.fetchWait | toJson }}
max_prefetch_bytes = {{ int .Values.kafka.maxPrefetchBytes }}
security_protocol = {{ .Values.kafka.securityProtocol | toJson }}
{{- if include "receipts.kafkaSasl" . }}

[kafka.sasl]
mechanism = {{ .Values.kafka.sasl.mechanism | toJson }}
{{- end }}
{{- if include "receipts.kafkaTls" . }}

[kafka.tls]
ca_file = {{ ternary "/etc/receipts/tls/kafka/kafka-ca.crt" "/etc/ssl/certs/ca-certificates.crt" (not (empty .Values.kafka.tls.caSecret.name)) | toJson }}
{{- end }}
{{- with .Values.kafka.librdkafka }}

[kafka.librdkafka]
{{- range $key, $value := . }}
{{ $key | toJson }} = {{ $value | toString | toJson }}
{{- end }}
{{- end }}

[schema_registry]
url = {{ .Values.schemaRegistry.url | toJson }}
timeout = {{ .Values.schemaRegistry.timeout | toJson }}
{{- with .Values.schemaRegistry.username }}
username = {{ . | toJson }}
{{- end }}
{{- end -}}

{{- define "receipts.toml.store" -}}
[store]
url = {{ .Values.store.url | toJson }}

[store.scylla]
{{- with .Values.store.scylla.username }}
username = {{ . | toJson }}
{{- end }}
tls = {{ .Values.store.scylla.tls }}
{{- if and .Values.store.scylla.tls .Values.store.scylla.caSecret.name }}
ca_file = "/etc/receipts/tls/scylla/scylla-ca.crt"
{{- end }}
{{- with .Values.store.scylla.replication }}
replication = { {{- $first := true }}{{ range $dc, $n := . }}{{ if not $first }},{{ end }} {{ $dc | toJson }} = {{ int $n }}{{ $first = false }}{{ end }} }
{{- end }}
request_timeout = {{ .Values.store.scylla.requestTimeout | toJson }}
scan_timeout = {{ .Values.store.scylla.scanTimeout | toJson }}
{{- end -}}

{{- define "receipts.toml.receiptTypes" -}}
[receipt_types]
dir = "/etc/receipts/receipt-types"
reload_interval = {{ .Values.receiptTypes.reloadInterval | toJson }}
{{- end }}

{{- define "receipts.toml.telemetry" -}}
[telemetry]
log_format = "json"
{{- with .Values.telemetry.logFilter }}
log_filter = {{ . | toJson }}
{{- end }}
{{- with .Values.telemetry.otlpEndpoint }}
otlp_endpoint = {{ . | toJson }}
{{- end }}
sample_ratio = {{ .Values.telemetry.sampleRatio | float64 }}
{{- end -}}

{{- define "receipts.toml.retry" -}}
[retry]
ladder = {{ .Values.retry.ladder | toJson }}
horizon = {{ .Values.retry.horizon | toJson }}
jitter = {{ .Values.retry.jitter | float64 }}
{{- if not (kindIs "invalid" .Values.retry.maxAttempts) }}
max_attempts = {{ int .Values.retry.maxAttempts }}
{{- end }}
{{- end -}}

{{- define "receipts.toml.webhooks" -}}
[webhooks]
request_timeout = {{ .Values.webhooks.requestTimeout | toJson }}
disable_after = {{ .Values.webhooks.disableAfter | toJson }}
allow_private = {{ .Values.webhooks.allowPrivate | toJson }}
secret_grace = {{ .Values.webhooks.secretGrace | toJson }}
public_url = {{ default (include "receipts.publicUrl" .) .Values.webhooks.publicUrl | toJson }}

[webhooks.retry]
ladder = {{ .Values.webhooks.retry.ladder | toJson }}
horizon = {{ .Values.webhooks.retry.horizon | toJson }}
jitter = {{ .Values.webhooks.retry.jitter | float64 }}
max_attempts = {{ int .Values.webhooks.retry.maxAttempts }}

[webhooks.per_destination]
concurrency = {{ int .Values.webhooks.perDestination.concurrency }}
rate_per_second = {{ int .Values.webhooks.perDestination.ratePerSecond }}
busy_delay = {{ .Values.webhooks.perDestination.busyDelay | toJson }}
{{- end -}}

{{/* Arguments: (list $ "tax"). */}}
{{- define "receipts.toml.registryFields" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $registry := index $root.Values.registries $name -}}
name = {{ $name | toJson }}
kind = {{ $registry.kind | toJson }}
base_url = {{ include "receipts.registryUrl" (list $root $name) | toJson }}
timeout = {{ $registry.timeout | toJson }}
callback_timeout = {{ $registry.callbackTimeout | toJson }}
{{- end -}}

{{/* One binary's file. Arguments: (list $ "binary"). */}}
{{- define "receipts.toml" -}}
{{- $root := index . 0 -}}
{{- $binary := index . 1 -}}
# {{ $binary }}: rendered by the Helm chart; secrets come from the environment.
{{- if eq $binary "ingest-gateway" }}

[gateway]
public_url = {{ include "receipts.publicUrl" $root | toJson }}
max_body_bytes = {{ int $root.Values.gateway.maxBodyBytes }}
request_timeout = {{ $root.Values.gateway.requestTimeout | toJson }}
max_in_flight_submissions = {{ int $root.Values.gateway.maxInFlightSubmissions }}
max_batch_items = {{ int $root.Values.gateway.maxBatchItems }}
max_batch_bytes = {{ int $root.Values.gateway.maxBatchBytes }}
{{- range $name := list "logistics" "tax" }}
{{- $registry := index $root.Values.registries $name }}
{{- if $registry.callbacks }}

[registry_callbacks.{{ $name }}]
kind = {{ $registry.kind | toJson }}
tolerance = {{ $registry.callbackTolerance | toJson }}
{{- end }}
{{- end }}

{{ include "receipts.toml.webhooks" $root }}

{{ include "receipts.toml.store" $root }}

{{ include "receipts.toml.receiptTypes" $root }}
{{- else if eq $binary "validator" }}

{{ include "receipts.toml.receiptTypes" $root }}
{{- else if or (eq $binary "tax-registrar") (eq $binary "logistics-registrar") }}

[registry]
{{ include "receipts.toml.registryFields" (list $root (trimSuffix "-registrar" $binary)) }}

{{ include "receipts.toml.retry" $root }}
{{- else if eq $binary "status-projector" }}

[status]
required_registries = {{ $root.Values.status.requiredRegistries | toJson }}

{{ include "receipts.toml.store" $root }}
{{- else if eq $binary "webhook-dispatcher" }}

{{ include "receipts.toml.webhooks" $root }}

{{ include "receipts.toml.store" $root }}
{{- else if eq $binary "setup" }}
{{- range $name := list "tax" "logistics" }}

[[registries]]
{{ include "receipts.toml.registryFields" (list $root $name) }}
{{- end }}

[status]
required_registries = {{ $root.Values.status.requiredRegistries | toJson }}

{{ include "receipts.toml.retry" $root }}

{{ include "receipts.toml.webhooks" $root }}

{{ include "receipts.toml.store" $root }}
{{- end }}

{{ include "receipts.toml.kafka" $root }}
{{- if ne $binary "setup" }}

{{ include "receipts.toml.telemetry" $root }}
{{- end }}
{{- end -}}

{{- define "receipts.toml.folderIngest" -}}
{{- $f := .Values.folderIngest -}}
# folder-ingest: rendered by the Helm chart; the API key comes from the environment
# (RECEIPTS_FOLDER_INGEST__API_KEY, secret key folder-ingest-api-key).

[folder_ingest]
dir = {{ $f.mountPath | toJson }}
gateway_url = {{ default (printf "http://%s:%d/" (include "receipts.objectName" (list . "ingest-gateway")) (int .Values.ingestGateway.service.port)) $f.gatewayUrl | toJson }}
{{- with $f.receiptType }}
receipt_type = {{ . | toJson }}
{{- end }}
{{- with $f.xmlReceiptType }}
xml_receipt_type = {{ . | toJson }}
{{- end }}
batch_size = {{ int $f.batchSize }}
concurrency = {{ int $f.concurrency }}
rate = {{ int $f.rate }}
quiet_period = {{ $f.quietPeriod | toJson }}
poll_interval = {{ $f.pollInterval | toJson }}
max_record_bytes = {{ int $f.maxRecordBytes }}
give_up_after = {{ $f.giveUpAfter | toJson }}
wait = {{ $f.wait }}
wait_timeout = {{ $f.waitTimeout | toJson }}

{{ include "receipts.toml.telemetry" . }}
{{- end -}}

{{/* A value as TOML (maps become inline tables). */}}
{{- define "receipts.tomlValue" -}}
{{- if kindIs "map" . -}}
{ {{- $first := true }}{{ range $key, $value := . }}{{ if not $first }},{{ end }} {{ $key | toJson }} = {{ include "receipts.tomlValue" $value }}{{ $first = false }}{{ end }} }
{{- else if kindIs "slice" . -}}
[{{ range $index, $value := . }}{{ if $index }}, {{ end }}{{ include "receipts.tomlValue" $value }}{{ end }}]
{{- else if kindIs "string" . -}}
{{ . | toJson }}
{{- else if kindIs "invalid" . -}}
""
{{- else -}}
{{ . }}
{{- end -}}
{{- end -}}

{{- define "receipts.toml.mocks" -}}
# mock-registries: rendered by the Helm chart (test installations only).
{{- range $name := list "tax" "logistics" }}

[{{ $name }}]
kind = {{ $name | toJson }}
listen = {{ printf "0.0.0.0:%d" (ternary 8091 8092 (eq $name "tax")) | toJson }}
{{- if (index $.Values.registries $name).callbacks }}
# The secret comes from RECEIPTS_{{ upper $name }}__CALLBACK__SECRET.
callback = { url = {{ printf "http://%s:%d/v1/registries/%s/callbacks" (include "receipts.objectName" (list $ "ingest-gateway")) (int $.Values.ingestGateway.service.port) $name | toJson }} }
{{- end }}
{{- with (index $.Values.mockRegistries (printf "%sFaults" $name)) }}
faults = {{ include "receipts.tomlValue" . }}
{{- end }}
{{- end }}

[telemetry]
log_format = "json"
{{- end -}}
