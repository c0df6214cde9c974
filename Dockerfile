# syntax=docker/dockerfile:1
#
# outbound: one static binary on a distroless base.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t outbound .
#   docker run --rm outbound worker --help

FROM golang:1.26 AS build
WORKDIR /src
# Modules first: this layer is reused as long as go.mod and go.sum do not change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
# CGO off: a static binary, which the distroless "static" base requires.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
    -o /out/outbound ./cmd/outbound

# CA certificates for https webhooks and tzdata are included; no shell, runs as
# uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/outbound /usr/local/bin/outbound
USER nonroot:nonroot
# Admin API, /healthz, /readyz and /metrics (--http-addr).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/outbound"]
CMD ["worker"]
