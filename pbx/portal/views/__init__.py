"""Portal views: thin. They read through the access helpers and write through the actions."""
