# bireal-fpga in a container: `docker build -t bireal-fpga .`
#   docker run --rm -v $PWD/out:/opt/bireal-fpga/build bireal-fpga build bireal18-cifar --board ZCU104 --out build/c18
FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/bireal-fpga
COPY requirements.txt pyproject.toml Makefile README.md ./
COPY bireal_fpga ./bireal_fpga
RUN make venv
COPY . .
ENV PATH=/opt/bireal-fpga/.venv/bin:$PATH
ENTRYPOINT ["bireal-fpga"]
CMD ["--help"]
