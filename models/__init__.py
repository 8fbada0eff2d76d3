"""reelroute's data layer: tables, migrations, settings, routing and the item lifecycle."""
