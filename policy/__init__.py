"""Security policy: the YAML model, MAC/DAC decisions, and safe reload.

The gate reads only the pure half; the loading half is for the shell:
  model        the compiled, frozen tables the gate reads per request (pure)
  access       MAC and DAC decisions over those tables, each naming its rule (pure)
  transit      transit floors, sender classifications, operations' minima (pure)
  schema       what a valid policy file is (pydantic)
  yaml_source  reading YAML into a model, every problem at its line (yaml, pydantic)
  load         a file or text -> validated -> compiled `Policy`
  holder       the policy in force, replaced only by a fully valid reload
"""
