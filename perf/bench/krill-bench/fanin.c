/* krill-bench fanin: --producers processes each sending --messages messages to one consumer.
 * Written on krill.h alone; main.c picks it from the command line. */
#include "bench.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The consumer doubles as coordinator: it starts the producers and exits once it has every
 * message. Producers send SEND_CHUNK items per call and re-queue themselves with T_GO. Items
 * carry their sequence number so the consumer's checksum catches corrupted payloads.
 * With --limit the consumer bounds its mailbox (kr_mailbox_limit), as Go's fanin bounds its
 * channel: a producer that meets a full mailbox stops and asks to be told (kr_notify_ready)
 * when there is room, instead of piling up messages the consumer cannot keep up with. */
struct fanin_run {
	const kr_pid *producers;
	uint64_t nproducers, messages, limit, size;
	double t_start, t_end; /* written by the consumer */
	uint64_t received, sum;
};

struct consumer {
	struct fanin_run *run;
	uint64_t received, sum, total;
};

struct producer {
	kr_pid consumer;
	uint64_t next, count, size;
	unsigned char *buf; /* copied and over 8 bytes: where the item is written first */
	bool zero_copy;
};

/* An item of size bytes: its sequence number, then that number's low byte over the rest,
 * written in full as a real producer writes its data. */
static void item_fill(unsigned char *b, uint64_t i, uint64_t size)
{
	memcpy(b, &i, sizeof i);
	memset(b + sizeof i, (int)(i & 0xff), size - sizeof i);
}

/* Send item i by copy (kr_send) or written in place (kr_msg_buf, kr_send_buf). */
static int send_item(kr_ctx *ctx, struct producer *s, uint64_t i)
{
	if (s->zero_copy) {
		unsigned char *b = kr_msg_buf(ctx, s->size);
		if (!b)
			return -ENOMEM;
		item_fill(b, i, s->size);
		return kr_send_buf(ctx, s->consumer, T_ITEM,
				   b); /* on -EAGAIN b goes with the call */
	}
	if (!s->buf) /* 8 bytes: the number is the item */
		return kr_send(ctx, s->consumer, T_ITEM, &i, sizeof i);
	item_fill(s->buf, i, s->size);
	return kr_send(ctx, s->consumer, T_ITEM, s->buf, s->size);
}

static void consumer(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct consumer *c = state;
	struct fanin_run *run = c->run;
	uint64_t v;
	int rc;

	switch (msg->tag) {
	case T_ITEM:
		if (msg->len != run->size) {
			unexpected(ctx, "consumer", msg);
			return;
		}
		memcpy(&v, msg->data, sizeof v);
		/* A big item is read to its end, as a real consumer would. */
		if (msg->len > sizeof v && msg->data[msg->len - 1] != (unsigned char)(v & 0xff)) {
			unexpected(ctx, "consumer", msg);
			return;
		}
		c->sum += v;
		if (++c->received < c->total)
			return;
		run->t_end = now();
		run->received = c->received;
		run->sum = c->sum;
		kr_exit(ctx, KR_NORMAL);
		return;
	case T_START:
		run->t_start = now();
		if (run->limit && (rc = kr_mailbox_limit(ctx, (uint32_t)run->limit)) < 0) {
			fail_kr(ctx, "kr_mailbox_limit", rc);
			return;
		}
		for (uint64_t i = 0; i < run->nproducers; i++)
			if (!post(ctx, run->producers[i], T_GO, NULL, 0))
				return;
		return;
	}
	unexpected(ctx, "consumer", msg);
}

static void producer(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct producer *s = state;
	uint64_t end = min_u64(s->next + SEND_CHUNK, s->count);

	if (msg->tag != T_GO) {
		unexpected(ctx, "producer", msg);
		return;
	}
	for (uint64_t i = s->next; i < end; i++) {
		int rc = send_item(ctx, s, i);
		if (rc == -EAGAIN) { /* the consumer's mailbox is full: resume when it has room */
			s->next = i;
			if ((rc = kr_notify_ready(ctx, s->consumer, T_GO)) < 0)
				fail_kr(ctx, "kr_notify_ready", rc);
			return;
		}
		if (rc < 0) {
			fail_kr(ctx, "kr_send", rc);
			return;
		}
	}
	s->next = end;
	if (end < s->count)
		post(ctx, kr_self(ctx), T_GO, NULL, 0);
	else
		kr_exit(ctx, KR_NORMAL);
}

int run_fanin(kr_runtime *rt, const struct params *p)
{
	uint64_t np = p->producers, k = p->messages, total = np * k;
	kr_pid *producers = malloc(np * sizeof *producers);
	struct fanin_run run = {.producers = producers,
				.nproducers = np,
				.messages = k,
				.limit = p->limit,
				.size = p->size};
	bool staged = !p->zero_copy && p->size > sizeof(uint64_t);
	unsigned char *bufs = staged ? calloc(np, p->size) : NULL;
	struct consumer cs = {.run = &run, .total = total};
	kr_pid cons;
	double t_end;
	int rc, status = 2;

	if (!producers || (staged && !bufs)) {
		free(producers);
		free(bufs);
		return out_of_memory();
	}
	if ((rc = kr_rt_spawn(rt, consumer, &cs, sizeof cs, &cons)) < 0) {
		status = bench_error("kr_rt_spawn", rc);
		goto out;
	}
	for (uint64_t i = 0; i < np; i++) {
		struct producer s = {.consumer = cons,
				     .count = k,
				     .size = p->size,
				     .buf = bufs ? bufs + i * p->size : NULL,
				     .zero_copy = p->zero_copy != 0};
		if ((rc = kr_rt_spawn(rt, producer, &s, sizeof s, &producers[i])) < 0) {
			status = bench_error("kr_rt_spawn", rc);
			goto out;
		}
	}
	if ((rc = kr_rt_send(rt, cons, T_START, NULL, 0)) < 0) {
		status = bench_error("kr_rt_send", rc);
		goto out;
	}
	if ((status = run_runtime(rt, &t_end)) != 0)
		goto out;

	/* np * k * (k - 1) / 2, modulo 2^64 like the consumer's sum */
	uint64_t expected_sum = np * (k % 2 == 0 ? k / 2 * (k - 1) : (k - 1) / 2 * k);
	double secs = run.t_end - run.t_start;
	print_head(rt, p, secs, (double)total);
	printf(",\"producers\":%" PRIu64 ",\"messages\":%" PRIu64 ",\"limit\":%" PRIu64
	       ",\"size\":%" PRIu64 ",\"zero_copy\":%d,\"bytes_per_s\":%.0f"
	       ",\"messages_total\":%" PRIu64 ",\"received\":%" PRIu64,
	       np, k, p->limit, p->size, (int)p->zero_copy,
	       per_second((double)total * (double)p->size, secs), total, run.received);
	print_tail();
	if (run.received != total || run.sum != expected_sum) {
		fprintf(stderr,
			"krill-bench: fanin: received %" PRIu64 " of %" PRIu64
			" messages, checksum %s\n",
			run.received, total, run.sum == expected_sum ? "ok" : "wrong");
		status = 1;
	}
out:
	free(producers);
	free(bufs);
	return status;
}
