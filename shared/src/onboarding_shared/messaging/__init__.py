"""The messaging kit: topology, confirmed publishing, outbox relay, inbox, reliable consumer."""
