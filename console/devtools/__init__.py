"""Developer tools: `seed_demo`, `seed_users` and `bench`, kept out of the product app.

`console.settings` installs this app only when DEBUG is on or DEVTOOLS=1 (`make run`, `make
bench` and the tests set one of them), so production ships none of these commands.
"""
