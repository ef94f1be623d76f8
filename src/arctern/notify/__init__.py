"""Mail: task notifications and sharing invitations, queued in the database and sent by the
workers over SMTP."""
