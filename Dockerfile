# The authority as a container image: a static binary (CGO_ENABLED=0) on an
# empty base, running as an unprivileged user (65532) with its data under
# /data. Build it from the repository's root:
#
#   docker build -t rewind-authority:dev .
#   docker build --build-arg PROGRAM=./examples/counter/cmd/counter-server -t counter-server:dev .
#
# PROGRAM is any command built on authority/cli (a game's own server), so
# every flag can be set as REWIND_<FLAG> in the environment (see
# deploy/kubernetes and deploy/agones). deploy/deploy_test.go runs the
# build command below and starts the binary from an empty directory.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG PROGRAM=./authority/cmd/authority
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/authority ${PROGRAM}
RUN mkdir -p /out/data

FROM scratch
COPY --from=build /out/authority /authority
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
# Listen on every interface of the container; the rest comes from flags or
# REWIND_* variables (a cluster also needs REWIND_ADVERTISE, the address
# the other authorities reach this one at).
ENV REWIND_LISTEN=0.0.0.0:7777 \
    REWIND_HTTP=0.0.0.0:9090 \
    REWIND_DATA=/data \
    REWIND_LOG_FORMAT=json
EXPOSE 7777/udp 7946/udp 7946/tcp 9090/tcp
VOLUME ["/data"]
ENTRYPOINT ["/authority"]
