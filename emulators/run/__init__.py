"""`make run`: Azurite, the ACS, Entra ID, Dataverse and Graph emulators and the Functions host.

options (ports, command line) -> settings (what the app sees) -> platform (start, stop) with
seeding (demo data) and processes (children, log follower) -> banner -> main.
"""
