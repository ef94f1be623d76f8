"""The Connect agent: runs on the data host, needs only the deployment's URL, never its
database. ``home`` holds its configuration and credential, ``client`` speaks the agent API,
``operations`` runs relayed file operations on the local roots, ``daemon`` ties them up."""
