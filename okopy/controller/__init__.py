"""The okopy SDN controller: a pure core and a thin os-ken shim.

- `reconcile`: observed switch state + desired state (`okopy.policy.desired`)
  -> intents (pure);
- `intents`: the actions the shim turns into OpenFlow messages;
- `openflow`: intents <-> os-ken OpenFlow 1.3 objects;
- `app`: the os-ken application, the one owner of the controller's state;
  `pending`: xids and the waiters of replies;
- `api`, `metrics`: the HTTP API and Prometheus metrics; `client`: the API's
  client, for `okopy prog` and `okopy map`; `endpoint`: the API's address
  and token file, from flags or the environment;
- `switch_btf`: the types of the maps of programs the policy does not
  have, read from the switch.
"""
