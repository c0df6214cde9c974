// Package kafkaconn turns the Kafka security flags (TLS, mTLS, SASL PLAIN and
// SCRAM) into the kafka-go dialer and transport that every Kafka client of a
// process shares. The zero Config is a plaintext connection, as kafka-go's
// defaults make it.
package kafkaconn
