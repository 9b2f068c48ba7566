"""Claims: `status/ready` issues as a work queue for any agent harness. A harness holding an agent
API token claims the most urgent, oldest ready issue nobody works on, keeps its lease alive with
heartbeats and releases it with an outcome; a lease nobody renews returns the issue to the queue.
The `claim` table is this room's; issues and labels are read and changed through the issues
room's functions."""
