// Package demo is `make demo`: the whole product in one process, with nothing
// to install. It starts embedded services (a kfake Kafka broker, miniredis or a
// given empty Redis, an SMTP mail catcher, a webhook receiver), runs the real
// worker of internal/app on them, configured through the same app.Config as
// `outbound worker`, publishes a plan of chat traffic and prints what every
// receiver gets, then checks that everything the traffic should cause happened.
//
// The files follow the jobs: services.go and receiver.go start what the worker
// talks to, plan.go and generator.go are the traffic, console.go and watch.go
// what the demo shows, demo.go the run that ties them together.
//
// It owns everything it starts and stops all of it when Run returns; only a
// given Redis keeps the demo's keys. It is linked into cmd/outbound-demo only,
// never into the worker binary.
package demo
