from l1ad.cli import app

app(prog_name="l1ad")
