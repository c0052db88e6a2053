// Follow accounts from another system: UserCreated and UserActivated, from a durable queue of
// your own. Needs amqplib, ajv and ajv-formats (`npm ci` here).
//
//     AMQP_URL=amqp://crm:secret@rabbitmq:5672/ QUEUE=crm.onboarding-users node consume_user_events.mjs
//
// The Node.js twin of ../consume_user_events.py; each event is also checked against its JSON
// Schema (../../schemas/) before it is handled.

import { pathToFileURL } from "node:url";

import amqplib from "amqplib";

import { check } from "./contract.mjs";

export const EXCHANGE = process.env.EVENTS_EXCHANGE ?? "onboarding.events";
export const QUEUE = process.env.QUEUE ?? "crm.onboarding-users"; // yours: name it after your system
// (event_type, event_version) -> routing key, which also names the schema.
const WANTED = new Map([
  ["UserCreated/1", "user.created.v1"],
  ["UserActivated/1", "user.activated.v1"],
]);

/**
 * Delivery is at least once: remember the event ids already handled (or being handled, so a
 * duplicate delivered meanwhile waits for the first). In memory here; in production, a table
 * with a unique event_id written in the same transaction as the change the event causes.
 */
export function oncePerEvent(handle) {
  const handled = new Map(); // event_id -> the promise of its handling
  return (envelope) => {
    const id = envelope.event_id;
    let handling = handled.get(id);
    if (handling === undefined) {
      handling = Promise.resolve().then(() => handle(envelope));
      handled.set(id, handling);
      handling.catch(() => handled.delete(id)); // it failed: a redelivery may try again
    }
    return handling;
  };
}

async function onMessage(channel, message, handle) {
  if (message === null) return; // the broker cancelled the consumer (queue deleted)
  try {
    const envelope = JSON.parse(message.content.toString("utf8"));
    const routingKey = WANTED.get(`${envelope.event_type}/${envelope.event_version}`);
    if (routingKey === undefined) {
      channel.ack(message); // a newer major version or another event: not ours to handle
      return;
    }
    check(routingKey, envelope); // throws InvalidEvent, naming every problem
    // Read only the fields you need: producers may add new ones at any time.
    await handle(envelope);
    channel.ack(message);
  } catch (error) {
    // No requeue loop: give the queue a dead-letter exchange to keep such messages for a look.
    console.error(`rejected ${message.properties.messageId}: ${error.message}`);
    channel.nack(message, false, false);
  }
}

/**
 * Consume until `signal` aborts (forever without one). Reconnects by itself, with backoff;
 * `onReady` is called each time the queue is declared, bound and consumed from.
 */
export async function consume(
  amqpUrl,
  handle,
  { queueName = QUEUE, exchange = EXCHANGE, signal, onReady = () => {} } = {},
) {
  const connection = await amqplib.connect(amqpUrl, {
    recovery: {
      initialDelay: 500,
      maxDelay: 30_000,
      // Run again after every reconnection: the channel, and what it consumes, are new.
      async setup(model) {
        const channel = await model.createChannel();
        await channel.prefetch(32);
        await channel.assertQueue(queueName, {
          durable: true,
          arguments: { "x-queue-type": "quorum" },
        });
        for (const routingKey of WANTED.values()) {
          await channel.bindQueue(queueName, exchange, routingKey);
        }
        await channel.consume(queueName, (message) => onMessage(channel, message, handle));
        onReady(queueName);
      },
    },
  });
  connection.on("disconnect", (error) => console.error(`disconnected: ${error?.message}`));
  await new Promise((resolve) => {
    if (signal?.aborted) resolve();
    signal?.addEventListener("abort", resolve, { once: true });
  });
  await connection.close(); // unacknowledged messages go back to the queue
}

function printEvent(envelope) {
  const { data } = envelope;
  console.log(`${envelope.event_type} ${data.user_id} ${data.email ?? ""}`);
}

// Run as a script (not imported): node consume_user_events.mjs
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const url = process.env.AMQP_URL ?? "amqp://guest:guest@localhost:5672/";
  const stop = new AbortController();
  for (const signal of ["SIGINT", "SIGTERM"]) process.once(signal, () => stop.abort());
  await consume(url, oncePerEvent(printEvent), {
    signal: stop.signal,
    onReady: (queue) => console.error(`consuming from ${queue}`),
  });
}
