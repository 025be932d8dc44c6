from l1ad.cli import app

# guarded: Dask LocalCluster workers are spawned and import the main module
if __name__ == "__main__":
    app(prog_name="l1ad")
