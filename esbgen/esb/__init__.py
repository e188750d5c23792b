"""Reading an ESB root: its layout, model, rules and routing. Reads only: no plugins, no writes."""
