// Publish UserLoggedIn from an identity provider: the onboarding system then activates a
// pending account on its first login. Needs amqplib, ajv and ajv-formats (`npm ci` here).
//
//     AMQP_URL=amqp://idp:secret@rabbitmq:5672/ node publish_user_logged_in.mjs ada@example.com
//
// The Node.js twin of ../publish_user_logged_in.py. The envelope is checked against
// ../../schemas/user.logged_in.v1.json before it leaves, so a mistake fails here, loudly,
// rather than being parked (and announced on event.rejected.v1) by the onboarding services.

import { randomUUID } from "node:crypto";
import { pathToFileURL } from "node:url";

import amqplib from "amqplib";

import { check } from "./contract.mjs";

export const EXCHANGE = process.env.EVENTS_EXCHANGE ?? "onboarding.events";
export const ROUTING_KEY = "user.logged_in.v1";

/** The envelope of one login; give at least one of email, username or userId. */
export function userLoggedIn({ email, username, userId, source = "identity-provider" } = {}) {
  const now = new Date().toISOString(); // UTC, e.g. 2026-05-17T09:30:00.000Z
  const identifiers = { email, username, user_id: userId };
  return {
    event_id: randomUUID(), // new for each login, the same on every retry of it
    event_type: "UserLoggedIn",
    event_version: 1,
    occurred_at: now,
    producer: source,
    correlation_id: randomUUID(),
    data: {
      ...Object.fromEntries(Object.entries(identifiers).filter(([, value]) => value != null)),
      logged_in_at: now,
      source,
    },
  };
}

/**
 * Resolves once the broker has the message on disk in every bound queue; rejects if it is
 * invalid, could not be routed, or was not confirmed within `timeoutMs` (publish again later
 * with the same envelope).
 *
 * `userId` is sent as the AMQP user_id: RabbitMQ refuses any other than the connection's
 * user, and the onboarding services name it as `producer` in event.rejected.v1, so you can
 * tell your rejections from others'. It defaults to the user in `amqpUrl`.
 */
export async function publish(
  amqpUrl,
  envelope,
  { exchange = EXCHANGE, timeoutMs = 10_000, userId = brokerUser(amqpUrl) } = {},
) {
  check(ROUTING_KEY, envelope);
  const connection = await amqplib.connect(amqpUrl);
  try {
    connection.on("error", () => {}); // the failure also rejects what is pending below
    // Confirms: the broker says when it has the message (or that it lost it).
    const channel = await connection.createConfirmChannel();
    let closed = null;
    channel.on("error", (error) => {
      closed = error; // e.g. 404 when the exchange does not exist
    });
    let returned = null;
    channel.on("return", (message) => {
      returned = message; // mandatory: no queue is bound to the key; arrives before the ack
    });
    channel.publish(exchange, ROUTING_KEY, Buffer.from(JSON.stringify(envelope)), {
      mandatory: true, // an error instead of a silent drop when nothing is bound to the key
      persistent: true,
      contentType: "application/json",
      messageId: envelope.event_id,
      correlationId: envelope.correlation_id,
      type: envelope.event_type,
      appId: envelope.producer,
      ...(userId ? { userId } : {}),
    });
    try {
      await withTimeout(channel.waitForConfirms(), timeoutMs, "no confirm from the broker");
    } catch (error) {
      throw closed ?? error;
    }
    if (returned !== null) {
      const { replyCode, replyText } = returned.fields;
      throw new Error(`not routed (${replyCode} ${replyText}): nothing is bound to ${ROUTING_KEY}`);
    }
    await channel.close();
  } finally {
    await connection.close().catch(() => {});
  }
}

/** The user named in an AMQP URL (amqplib's default, guest, when it names none). */
export function brokerUser(amqpUrl) {
  return decodeURIComponent(new URL(amqpUrl).username) || "guest";
}

function withTimeout(promise, ms, message) {
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

// Run as a script (not imported): node publish_user_logged_in.mjs
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const address = process.argv[2] ?? "ada@example.com";
  const url = process.env.AMQP_URL ?? "amqp://guest:guest@localhost:5672/";
  try {
    await publish(url, userLoggedIn({ email: address }));
    console.log(`published ${ROUTING_KEY} for ${address}`);
  } catch (error) {
    console.error(`could not publish ${ROUTING_KEY}: ${error.message}`);
    process.exitCode = 1;
  }
}
