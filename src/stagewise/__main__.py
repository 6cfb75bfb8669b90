from stagewise.cli import app

app()
